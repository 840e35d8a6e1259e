//! Small value types a scenario author writes (durations, identifiers).
//!
//! They check themselves while being deserialized, so a bad value is reported by
//! serde at the exact field that holds it, before any later stage sees it.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A length of time written as `250ms`, `10s`, `5m`, `72h` or `7d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub fn as_std(self) -> std::time::Duration {
        self.0
    }

    /// The moment this long before `now`, or `None` when that is before the
    /// calendar's range (`--since 100000000d`): callers turn it into an error.
    pub fn before(
        self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::Duration::from_std(self.0)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
    }
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| {
            format!("invalid duration `{text}`: missing a unit (ms, s, m, h or d), e.g. `10s`")
        })?;
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| {
            format!("invalid duration `{text}`: expected a whole number followed by ms, s, m, h or d, e.g. `10s`")
        })?;
        let millis_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => {
                let word = unit.trim().to_ascii_lowercase();
                let short = match word.trim_end_matches('s') {
                    "millisecond" | "msec" => Some("ms"),
                    "second" | "sec" => Some("s"),
                    "minute" | "min" => Some("m"),
                    "hour" | "hr" => Some("h"),
                    "day" => Some("d"),
                    _ => None,
                };
                return Err(match short {
                    Some(u) => format!("invalid duration `{text}`: write `{number}{u}` (a number and ms, s, m, h or d, no space)"),
                    None => format!("invalid duration `{text}`: unknown unit `{}` (use ms, s, m, h or d, e.g. `10s`)", unit.trim()),
                });
            }
        };
        let millis = number
            .checked_mul(millis_per_unit)
            .ok_or_else(|| format!("invalid duration `{text}`: too large"))?;
        Ok(Duration(std::time::Duration::from_millis(millis)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms >= size && ms % size == 0 {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(ms|s|m|h|d)$",
            "description": "A duration such as 250ms, 10s, 5m, 72h or 7d."
        })
    }
}

/// Declares an identifier newtype whose characters are checked on deserialization.
macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $pattern:literal, $what:literal, $valid:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let valid: fn(&str) -> bool = $valid;
                if valid(text) {
                    Ok(Self(text.to_owned()))
                } else {
                    let suggestion: String = text
                        .trim()
                        .to_ascii_lowercase()
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
                        .collect();
                    let hint = if !suggestion.is_empty() && valid(&suggestion.replace('-', "_")) && suggestion.replace('-', "_") != text {
                        format!(", e.g. `{}`", suggestion.replace('-', "_"))
                    } else if !suggestion.is_empty() && valid(&suggestion) && suggestion != text {
                        format!(", e.g. `{suggestion}`")
                    } else {
                        String::new()
                    };
                    Err(format!(concat!("invalid ", $what, " `{}`: it must match ", $pattern, "{}"), text, hint))
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "pattern": $pattern })
            }
        }
    };
}

identifier!(
    /// A scenario's name: unique within a directory, used in URLs, logs and the store.
    ScenarioName,
    "^[a-z0-9][a-z0-9_-]*$",
    "scenario name",
    |s| {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    }
);

identifier!(
    /// A step's id: unique in its scenario; templates read its output as `steps.<id>`.
    StepId,
    "^[a-z_][a-z0-9_]*$",
    "step id",
    |s| {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }
);

impl StepId {
    /// Whether `text` would be a valid step id (also used for loop variable names).
    pub fn from_str_checked(text: &str) -> bool {
        text.parse::<StepId>().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_every_unit() {
        let ms = |s: &str| s.parse::<Duration>().unwrap().0.as_millis();
        assert_eq!(ms("250ms"), 250);
        assert_eq!(ms("10s"), 10_000);
        assert_eq!(ms("5m"), 300_000);
        assert_eq!(ms("72h"), 259_200_000);
        assert_eq!(ms("7d"), 604_800_000);
    }

    #[test]
    fn bad_durations_say_why() {
        assert!("10"
            .parse::<Duration>()
            .unwrap_err()
            .contains("missing a unit"));
        assert!("10x"
            .parse::<Duration>()
            .unwrap_err()
            .contains("unknown unit `x`"));
        assert!("s"
            .parse::<Duration>()
            .unwrap_err()
            .contains("whole number"));
        assert!("99999999999999999999d".parse::<Duration>().is_err());
    }

    #[test]
    fn durations_display_in_their_largest_unit() {
        assert_eq!("120s".parse::<Duration>().unwrap().to_string(), "2m");
        assert_eq!("1500ms".parse::<Duration>().unwrap().to_string(), "1500ms");
    }

    #[test]
    fn identifiers_reject_bad_characters() {
        assert!("find_referral".parse::<StepId>().is_ok());
        assert!("Find".parse::<StepId>().is_err());
        assert!("1st".parse::<StepId>().is_err());
        assert!("deal-won".parse::<ScenarioName>().is_ok());
        assert!("-x".parse::<ScenarioName>().is_err());
    }
}
