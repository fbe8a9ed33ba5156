//! Test material shared by the engine tests, the black-box tests and the benchmarks.

use std::path::PathBuf;

/// The speech model cache the tests use: `tandem_core::default_model_dir()` (honours
/// `TANDEM_MODEL_DIR`, as `make models` and `make test` set it).
pub fn model_dir() -> PathBuf {
    tandem_core::default_model_dir()
}

/// Ten Harvard sentences (IEEE 1969, list 1): phonetically balanced text for synthetic voices.
pub const HARVARD_SENTENCES: [&str; 10] = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
];

/// The nine labelled speakers of `speaker-samples`: `phrase_{name}.wav`.
pub const SPEAKER_SAMPLE_VOICES: [&str; 9] = [
    "EN-US_Aria",
    "EN-US_Davis",
    "EN-US_Jenny",
    "EN-US_Tony",
    "JA-JP_Aoi",
    "JA-JP_Daichi",
    "JA-JP_Keita",
    "JA-JP_Mayu",
    "JA-JP_Naoki",
];
