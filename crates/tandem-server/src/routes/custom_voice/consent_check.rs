//! The consent check: the talent said Azure's statement (the region's recognizer transcribes
//! the consent audio, scored by word accuracy), and the voice in the training set is the
//! talent's (cosine of speaker embeddings).

use tandem_audio::{resample, Pcm};
use tandem_engines::{Embedding, RecognizeOptions};

use crate::{ApiError, AppState};

/// Least word accuracy (1 − WER, after normalisation) of the consent transcript against the
/// statement. The region's recognizer (Whisper tiny.en) mishears names and run-together words:
/// joe (Piper) saying the statement scored 0.71 ("I tell them where that …", "create an
/// eusosynthetic version"), so 0.6 (at most 9 errors in the 24 words); another sentence scores
/// near 0. The speaker check, not this one, ties the consent to the voice.
pub(crate) const TEXT_SCORE_THRESHOLD: f64 = 0.6;

/// Least cosine between the consent audio's speaker embedding and the training set's mean
/// embedding (GE2E, as speaker verification uses; its verification threshold is 0.75).
pub(crate) const SPEAKER_SIMILARITY_THRESHOLD: f64 = 0.75;

/// Longest consent recording, seconds.
pub(crate) const MAX_CONSENT_SECS: f64 = 60.0;

/// Azure's consent statement, for the talent and company named.
pub(crate) fn statement(talent: &str, company: &str) -> String {
    format!(
        "I {talent} am aware that recordings of my voice will be used by {company} to create \
         and use a synthetic version of my voice."
    )
}

/// Word accuracy of `transcript` against `expected`: `max(0, 1 − WER)`, rounded to 4 places.
pub(crate) fn text_score(expected: &str, transcript: &str) -> f64 {
    let stats = tandem_engines::text::word_errors(expected, transcript);
    round4((1.0 - stats.wer()).max(0.0))
}

/// Rounds to 4 decimal places, as scores are shown.
pub(crate) fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn loading() -> ApiError {
    ApiError::Unavailable {
        message: "the speech engines are still loading".into(),
        retry_after: 2,
    }
}

/// Transcribes `pcm` with the region's default recognizer on the recognition pool.
pub(crate) async fn transcribe(state: &AppState, pcm: &Pcm) -> Result<String, ApiError> {
    let recognizer = state
        .engines()
        .map(|e| e.recognizer.clone())
        .ok_or_else(loading)?;
    let pcm16 = resample(pcm, 16_000);
    let opts = RecognizeOptions {
        language: "en-US".into(),
        audio_ctx: state.config().whisper_audio_ctx,
    };
    let result = state
        .stt_pool()
        .run(move || recognizer.recognize(&pcm16.samples, &opts))
        .await??;
    Ok(result.text)
}

/// The speaker embedding of `pcm` (the region's speaker encoder, on the recognition pool).
pub(crate) async fn embed(state: &AppState, pcm: Pcm) -> Result<Embedding, ApiError> {
    let enc = state
        .engines()
        .map(|e| e.speaker.clone())
        .ok_or_else(loading)?;
    Ok(state.stt_pool().run(move || enc.embed(&pcm)).await??)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_is_azures() {
        assert_eq!(
            statement("Joe", "Contoso"),
            "I Joe am aware that recordings of my voice will be used by Contoso to create and \
             use a synthetic version of my voice."
        );
    }

    #[test]
    fn scores_follow_word_accuracy() {
        let s = statement("Joe", "Contoso");
        assert_eq!(text_score(&s, &s), 1.0);
        // Case and punctuation do not count.
        assert_eq!(text_score(&s, &s.to_uppercase().replace('.', "")), 1.0);
        // One substituted word of 24.
        let one = s.replace("Contoso", "Contosa");
        let score = text_score(&s, &one);
        assert!((score - (1.0 - 1.0 / 24.0)).abs() < 1e-3, "{score}");
        assert!(score >= TEXT_SCORE_THRESHOLD);
        // Another sentence fails; more errors than words is 0, not negative.
        assert!(text_score(&s, "The quick brown fox jumps over the lazy dog.") < 0.3);
        assert_eq!(
            text_score(
                "hello",
                "a b c d e f g h i j k l m n o p q r s t u v w x y z"
            ),
            0.0
        );
    }
}
