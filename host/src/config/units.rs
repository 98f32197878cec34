//! Human-friendly units in config values: durations (`150ms`, `2s`, `5m`,
//! `24h`) and byte sizes (`512KiB`, `64MiB`, `1GB`), with errors that say
//! what was expected.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// A duration written as a number and a unit: `ms`, `s`, `m`, `h` or `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub Duration);

/// A size in bytes written as a number and an optional unit: `B`, `KB`,
/// `MB`, `GB` (powers of 1000) or `KiB`, `MiB`, `GiB` (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const DURATION_HELP: &str = "a duration such as `250ms`, `2s`, `5m`, `24h` or `7d`";
const SIZE_HELP: &str = "a size such as `512KiB`, `64MiB` or `1GB`";

impl Span {
    /// Parse `text` (e.g. `2s`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("`{text}` has no unit; expected {DURATION_HELP}"))?;
        let (number, unit) = text.split_at(split);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not {DURATION_HELP}"))?;
        let seconds = match unit.trim() {
            "ms" => number / 1000.0,
            "s" => number,
            "m" | "min" => number * 60.0,
            "h" => number * 3600.0,
            "d" => number * 86400.0,
            _ => {
                return Err(format!(
                    "`{text}` has an unknown unit; expected {DURATION_HELP}"
                ));
            }
        };
        Ok(Self(Duration::from_secs_f64(seconds)))
    }
}

impl ByteSize {
    /// Parse `text` (e.g. `64MiB`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not {SIZE_HELP}"))?;
        let factor: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1000,
            "MB" => 1000 * 1000,
            "GB" => 1000 * 1000 * 1000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => {
                return Err(format!(
                    "`{text}` has an unknown unit; expected {SIZE_HELP}"
                ));
            }
        };
        number
            .checked_mul(factor)
            .map(Self)
            .ok_or_else(|| format!("`{text}` is too large"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UnitVisitor::<Span>(DURATION_HELP, std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UnitVisitor::<ByteSize>(SIZE_HELP, std::marker::PhantomData))
    }
}

trait FromUnitText: Sized {
    fn from_text(text: &str) -> Result<Self, String>;
    /// A bare number: bytes for sizes; refused for durations (ambiguous).
    fn from_number(number: u64) -> Result<Self, String>;
}

impl FromUnitText for Span {
    fn from_text(text: &str) -> Result<Self, String> {
        Span::parse(text)
    }
    fn from_number(number: u64) -> Result<Self, String> {
        Err(format!("`{number}` has no unit; expected {DURATION_HELP}"))
    }
}

impl FromUnitText for ByteSize {
    fn from_text(text: &str) -> Result<Self, String> {
        ByteSize::parse(text)
    }
    fn from_number(number: u64) -> Result<Self, String> {
        Ok(ByteSize(number))
    }
}

struct UnitVisitor<T>(&'static str, std::marker::PhantomData<T>);

impl<T: FromUnitText> de::Visitor<'_> for UnitVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        T::from_text(text).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<T, E> {
        T::from_number(number).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<T, E> {
        u64::try_from(number)
            .map_err(|_| E::custom(format!("`{number}` is negative; expected {}", self.0)))
            .and_then(|n| T::from_number(n).map_err(E::custom))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(Span::parse("250ms").unwrap().0, Duration::from_millis(250));
        assert_eq!(Span::parse("2s").unwrap().0, Duration::from_secs(2));
        assert_eq!(Span::parse("1.5s").unwrap().0, Duration::from_millis(1500));
        assert_eq!(Span::parse("5m").unwrap().0, Duration::from_secs(300));
        assert_eq!(Span::parse("24h").unwrap().0, Duration::from_secs(86400));
        assert!(Span::parse("2").unwrap_err().contains("has no unit"));
        assert!(
            Span::parse("2 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(
            Span::parse("fast")
                .unwrap_err()
                .contains("is not a duration")
        );
        assert_eq!(Span::parse("1500ms").unwrap().to_string(), "1500ms");
        assert_eq!(Span::parse("2m").unwrap().to_string(), "120s");
    }

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("64MiB").unwrap().0, 64 << 20);
        assert_eq!(ByteSize::parse("1GB").unwrap().0, 1_000_000_000);
        assert_eq!(ByteSize::parse("512").unwrap().0, 512);
        assert!(
            ByteSize::parse("12 bananas")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(
            ByteSize::parse("99999999999999GiB")
                .unwrap_err()
                .contains("too large")
        );
    }
}
