use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{CoreError, Result};

/// The name of a region, such as `westus`: a lowercase DNS label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionName(String);

impl RegionName {
    /// Validates and wraps a region name.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if ok {
            Ok(Self(name))
        } else {
            Err(CoreError::InvalidRegion(name))
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RegionName {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<RegionName> for String {
    fn from(r: RegionName) -> String {
        r.0
    }
}

impl fmt::Display for RegionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for RegionName {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

/// The id of a speech resource (an Azure "Cognitive Services account"): a random UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceId(pub uuid::Uuid);

impl ResourceId {
    /// A new random id.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for ResourceId {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        uuid::Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| CoreError::InvalidResourceId(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for ok in ["westus", "eastus2", "us-west-1"] {
            assert!(RegionName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "WestUS",
            "west us",
            "-west",
            "west-",
            &"a".repeat(33),
            "west/us",
        ] {
            assert!(RegionName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resource_id_round_trips() {
        let id = ResourceId::random();
        assert_eq!(id.to_string().parse::<ResourceId>().unwrap(), id);
        assert!("nope".parse::<ResourceId>().is_err());
    }
}
