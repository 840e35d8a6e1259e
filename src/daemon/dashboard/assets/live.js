// Live updates for a running, queued or waiting execution: fetch the page's
// body fragment and swap it in, every second (every 3 s while it waits for a
// person or an event); stop once the execution has ended. Nothing is
// swapped while someone is filling a form in it (a review's name or
// comment), so typing is never lost. Without JavaScript the page is
// complete as served; this only refreshes it.
(function () {
  "use strict";
  var box = document.getElementById("live");
  if (!box || !box.dataset.live) return;
  var ended = ["succeeded", "failed", "filtered", "rejected", "incomplete"];
  var last = null;
  var busy = function () {
    var active = document.activeElement;
    if (active && box.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) return true;
    return Array.prototype.some.call(box.querySelectorAll("input:not([type=hidden]), textarea"), function (el) {
      return el.value !== el.defaultValue;
    });
  };
  var open = function () {
    return Array.prototype.map.call(box.querySelectorAll("details[open]"), function (d) {
      return d.parentElement.id;
    });
  };
  var later = function (status) {
    setTimeout(tick, status === "waiting" ? 3000 : 1000);
  };
  var tick = function () {
    if (busy()) return later(box.dataset.status);
    fetch(box.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.text().then(function (html) {
          return { html: html, status: r.headers.get("x-execution-status") || "" };
        });
      })
      .then(function (update) {
        if (update.html !== last && !busy()) {
          var keep = open();
          box.innerHTML = update.html;
          keep.forEach(function (id) {
            var d = id && document.querySelector("#" + CSS.escape(id) + " details");
            if (d) d.open = true;
          });
          last = update.html;
          box.dataset.status = update.status;
        }
        if (ended.indexOf(update.status) < 0) later(update.status);
      })
      .catch(function () { setTimeout(tick, 5000); });
  };
  later(box.dataset.status);
})();
