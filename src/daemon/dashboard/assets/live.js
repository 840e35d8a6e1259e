// Live updates for a running or waiting execution: every second, fetch the
// page's body fragment and swap it in; stop once the execution has ended.
// Without JavaScript the page is complete as served; this only refreshes it.
(function () {
  "use strict";
  var box = document.getElementById("live");
  if (!box || !box.dataset.live) return;
  var ended = ["succeeded", "failed", "filtered", "rejected", "incomplete"];
  var open = function () {
    return Array.prototype.map.call(box.querySelectorAll("details[open]"), function (d) {
      return d.parentElement.id;
    });
  };
  var tick = function () {
    fetch(box.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.text().then(function (html) {
          return { html: html, status: r.headers.get("x-execution-status") };
        });
      })
      .then(function (update) {
        var keep = open();
        box.innerHTML = update.html;
        keep.forEach(function (id) {
          var d = id && document.querySelector("#" + CSS.escape(id) + " details");
          if (d) d.open = true;
        });
        box.dataset.status = update.status || "";
        if (ended.indexOf(box.dataset.status) < 0) setTimeout(tick, 1000);
      })
      .catch(function () { setTimeout(tick, 5000); });
  };
  setTimeout(tick, 1000);
})();
