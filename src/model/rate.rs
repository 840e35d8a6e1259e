//! `rate_limit:` on a connection: `20/s`, `500/min`, or `{ rate: 20/s, burst: 5 }`.
//!
//! APIs state their limits as a count per period (the referral engine: 600
//! calls a minute, a block of seven days for abuse), so that is what a user
//! writes; the engine paces the calls evenly, letting `burst` go at once.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// At most `count` calls per `per`, `burst` of them back to back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    pub count: u32,
    pub per: std::time::Duration,
    /// Calls that may go at once after a quiet time (default 1: evenly paced).
    pub burst: u32,
}

impl RateLimit {
    /// The time one call takes of the allowance.
    pub fn interval(&self) -> std::time::Duration {
        self.per / self.count
    }

    /// The spacing the engine keeps: 5% wider than the allowance, so that
    /// calls bunched up on the way (a slow moment, a busy machine) still
    /// arrive within the limit the server counts.
    pub fn pacing_interval(&self) -> std::time::Duration {
        self.interval() * 21 / 20
    }

    /// How far ahead of the schedule a burst may go.
    pub fn tolerance(&self) -> std::time::Duration {
        self.pacing_interval() * (self.burst.max(1) - 1)
    }
}

impl FromStr for RateLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let bad = || {
            format!("invalid rate `{text}`: write a count per second, minute or hour, e.g. `20/s` or `500/min`")
        };
        let (count, unit) = text.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(format!(
                "invalid rate `{text}`: the count must be at least 1"
            ));
        }
        let per = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            _ => return Err(bad()),
        };
        let limit = RateLimit {
            count,
            per: std::time::Duration::from_secs(per),
            burst: 1,
        };
        if limit.interval().is_zero() {
            return Err(format!(
                "invalid rate `{text}`: more than a billion calls per second"
            ));
        }
        Ok(limit)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)?;
        if self.burst > 1 {
            write!(f, " (burst {})", self.burst)?;
        }
        Ok(())
    }
}

/// The written forms.
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "RateLimit")]
enum RawRateLimit {
    /// `20/s`, `500/min`, `1000/h`.
    Short(#[schemars(regex(pattern = r"^[0-9]+/(s|sec|second|m|min|minute|h|hour)$"))] String),
    Detailed(DetailedRate),
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DetailedRate {
    /// `20/s`, `500/min`, `1000/h`.
    rate: String,
    /// Calls that may go at once after a quiet time (default 1).
    #[serde(default)]
    burst: Option<u32>,
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (text, burst) = match RawRateLimit::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(
                "a rate limit is `20/s`, `500/min`, or `{ rate: 20/s, burst: 5 }`",
            )
        })? {
            RawRateLimit::Short(text) => (text, None),
            RawRateLimit::Detailed(d) => (d.rate, d.burst),
        };
        let mut limit: RateLimit = text.parse().map_err(serde::de::Error::custom)?;
        if let Some(burst) = burst {
            if burst == 0 {
                return Err(serde::de::Error::custom("`burst` must be at least 1"));
            }
            limit.burst = burst;
        }
        Ok(limit)
    }
}

impl Serialize for RateLimit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let rate = format!(
            "{}/{}",
            self.count,
            if self.per.as_secs() == 1 {
                "s"
            } else if self.per.as_secs() == 60 {
                "min"
            } else {
                "h"
            }
        );
        RawRateLimit::Detailed(DetailedRate {
            rate,
            burst: Some(self.burst),
        })
        .serialize(serializer)
    }
}

impl JsonSchema for RateLimit {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RateLimit".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        RawRateLimit::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_written() {
        let limit: RateLimit = "500/min".parse().unwrap();
        assert_eq!(limit.interval(), std::time::Duration::from_millis(120));
        assert_eq!(limit.to_string(), "500/min");
        let detailed: RateLimit = serde_yaml::from_str("{ rate: 20/s, burst: 5 }").unwrap();
        assert_eq!((detailed.count, detailed.burst), (20, 5));
        assert_eq!(detailed.interval(), std::time::Duration::from_millis(50));
        for bad in ["20", "0/s", "20/day", "x/s"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
        let error = serde_yaml::from_str::<RateLimit>("{ rate: 20/s, burst: 0 }").unwrap_err();
        assert!(error.to_string().contains("burst"), "{error}");
    }
}
