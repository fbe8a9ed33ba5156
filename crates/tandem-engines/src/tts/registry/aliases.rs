//! Aliases: Azure neural voice names (`en-US-JennyNeural`) mapped to the voices we have.

use super::TtsEngine;
use crate::tts::{Gender, Voice};

/// Azure en-US neural voices that map to the female flite voice `en-US-SltFlite`.
const US_FEMALE: &[&str] = &["Jenny", "Aria", "Sara", "Michelle", "Ava", "Emma"];
/// Azure en-US neural voices that map to the male flite voice `en-US-RmsFlite`.
const US_MALE: &[&str] = &[
    "Guy",
    "Christopher",
    "Davis",
    "Andrew",
    "Brian",
    "Eric",
    "Tony",
];
/// First names of well-known male Azure neural voices in other locales. With [`US_MALE`], they
/// decide the gender of an alias outside en-US (others count as female); see [`is_male_name`].
const OTHER_MALE_NAMES: &[&str] = &[
    "Jason",
    "Roger",
    "Steffan",
    "Ryan",
    "Thomas",
    "Alfie",
    "Elliot",
    "Ethan",
    "Noah",
    "Oliver",
    "Conrad",
    "Killian",
    "Kasper",
    "Florian",
    "Bernd",
    "Christoph",
    "Klaus",
    "Ralf",
    "Henri",
    "Alain",
    "Claude",
    "Jerome",
    "Maurice",
    "Yves",
    "Remy",
    "Alvaro",
    "Arnau",
    "Dario",
    "Elias",
    "Nil",
    "Saul",
    "Teo",
    "Jorge",
    "Cecilio",
    "Gerardo",
    "Liberto",
    "Luciano",
    "Pelayo",
    "Yago",
    "Diego",
    "Benigno",
    "Calimero",
    "Cataldo",
    "Gianni",
    "Giuseppe",
    "Lisandro",
    "Rinaldo",
    "Antonio",
    "Donato",
    "Fabio",
    "Humberto",
    "Julio",
    "Nicolau",
    "Valerio",
    "Duarte",
    "Maarten",
    "Marek",
    "Mattias",
    "Sofie",
    "Dmitry",
    "Jeppe",
    "Harri",
    "Finn",
    "Antonin",
    "Keita",
    "Arne",
    "Mats",
];

/// Whether `person` is one of `names`, ignoring ASCII case.
fn is_one_of(names: &[&str], person: &str) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(person))
}

/// Whether `person` is a well-known male first name: an en-US male voice ([`US_MALE`]) or one of
/// [`OTHER_MALE_NAMES`].
fn is_male_name(person: &str) -> bool {
    is_one_of(US_MALE, person) || is_one_of(OTHER_MALE_NAMES, person)
}

impl TtsEngine {
    pub(super) fn alias(&self, short: &str) -> Option<&(Voice, usize)> {
        let lower = short.to_ascii_lowercase();
        let stem_len = lower.strip_suffix("neural")?.len();
        let mut parts = short.splitn(3, '-');
        let (lang, region, rest) = (parts.next()?, parts.next()?, parts.next()?);
        let locale = format!("{lang}-{region}");
        let mut person = &rest[..rest.len() - (short.len() - stem_len)];
        if person.to_ascii_lowercase().ends_with("multilingual") {
            person = &person[..person.len() - "multilingual".len()];
        }
        let is = |list: &[&str]| is_one_of(list, person);
        if locale.eq_ignore_ascii_case("en-US") {
            if is(US_FEMALE) {
                return self.by_short("en-US-SltFlite");
            }
            if is(US_MALE) {
                return self.by_short("en-US-RmsFlite");
            }
        }
        let gender = if is_male_name(person) {
            Gender::Male
        } else {
            Gender::Female
        };
        if locale.eq_ignore_ascii_case("en-US") {
            return self.default_for(&locale);
        }
        let pick = |same_lang: bool| {
            let matches = |v: &Voice| {
                if same_lang {
                    v.locale
                        .split('-')
                        .next()
                        .is_some_and(|l| l.eq_ignore_ascii_case(lang))
                } else {
                    v.locale.eq_ignore_ascii_case(&locale)
                }
            };
            self.voices
                .iter()
                .find(|(v, _)| matches(v) && v.gender == gender)
                .or_else(|| self.voices.iter().find(|(v, _)| matches(v)))
        };
        pick(false).or_else(|| pick(true))
    }
}
