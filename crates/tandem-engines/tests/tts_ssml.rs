//! SSML parsing: good documents, hostile documents, and a mutation test.

use tandem_engines::ssml::{parse, Segment, SsmlLimits};
use tandem_engines::{EngineError, Prosody};

fn ok(doc: &str) -> Vec<Segment> {
    match parse(doc, &SsmlLimits::default()) {
        Ok(d) => d.segments,
        Err(e) => panic!("{doc}: {e}"),
    }
}

fn err(doc: &str) -> String {
    err_with(doc, &SsmlLimits::default())
}

fn err_with(doc: &str, limits: &SsmlLimits) -> String {
    match parse(doc, limits) {
        Ok(d) => panic!("accepted {doc:?}: {d:?}"),
        Err(EngineError::BadSsml(m)) => m,
        Err(e) => panic!("wrong error kind for {doc:?}: {e}"),
    }
}

fn speak(voice: &str, text: &str, prosody: Prosody) -> Segment {
    Segment::Speak {
        voice: voice.into(),
        text: text.into(),
        prosody,
    }
}

#[test]
fn azure_sample() {
    let d = parse(
        "<speak version='1.0' xml:lang='en-US'><voice xml:lang='en-US' xml:gender='Male' \
         name='en-US-ChristopherNeural'>I'm excited to try text to speech!</voice></speak>",
        &SsmlLimits::default(),
    )
    .unwrap();
    assert_eq!(d.lang.as_deref(), Some("en-US"));
    assert_eq!(
        d.segments,
        vec![speak(
            "en-US-ChristopherNeural",
            "I'm excited to try text to speech!",
            Prosody::default()
        )]
    );
}

#[test]
fn entities_are_expanded() {
    let s = ok("<?xml version=\"1.0\"?><speak><voice name='v'>Tom &amp; Jerry &lt;3 &#65;&#x42; &quot;hi&apos;</voice></speak>");
    assert_eq!(
        s,
        vec![speak("v", "Tom & Jerry <3 AB \"hi'", Prosody::default())]
    );
}

#[test]
fn nested_prosody_combines() {
    let s = ok("<speak><voice name='v'>a<prosody rate='+100%'>b<prosody rate='-50%' pitch='+10%' volume='50'>c</prosody></prosody></voice></speak>");
    assert_eq!(s.len(), 3);
    let Segment::Speak { prosody: p1, .. } = &s[1] else {
        panic!()
    };
    assert_eq!(p1.rate, 2.0);
    let Segment::Speak {
        prosody: p2, text, ..
    } = &s[2]
    else {
        panic!()
    };
    assert_eq!(text, "c");
    assert_eq!(p2.rate, 1.0);
    assert!((p2.pitch - 1.1).abs() < 1e-6);
    assert_eq!(p2.volume, 0.5);
}

#[test]
fn prosody_value_forms() {
    for (attr, want) in [
        ("rate='x-slow'", 0.5),
        ("rate='fast'", 1.55),
        ("rate='1.2'", 1.2),
        ("rate='-10%'", 0.9),
        ("rate='default'", 1.0),
    ] {
        let s = ok(&format!(
            "<speak><voice name='v'><prosody {attr}>x</prosody></voice></speak>"
        ));
        let Segment::Speak { prosody, .. } = &s[0] else {
            panic!()
        };
        assert!(
            (prosody.rate - want).abs() < 1e-6,
            "{attr}: {}",
            prosody.rate
        );
    }
    let s = ok(
        "<speak><voice name='v'><prosody pitch='x-high' volume='+6dB'>x</prosody></voice></speak>",
    );
    let Segment::Speak { prosody, .. } = &s[0] else {
        panic!()
    };
    assert_eq!(prosody.pitch, 1.5);
    assert!((prosody.volume - 1.995).abs() < 0.01);
    let s = ok(
        "<speak><voice name='v'><prosody pitch='-2st' volume='silent'>x</prosody></voice></speak>",
    );
    let Segment::Speak { prosody, .. } = &s[0] else {
        panic!()
    };
    assert!((prosody.pitch - 0.8909).abs() < 1e-3);
    assert_eq!(prosody.volume, 0.0);
}

#[test]
fn multiple_voices_and_breaks() {
    let s = ok(
        "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' \
        xmlns:mstts='https://www.w3.org/2001/mstts' xml:lang='en-US'>\
        <voice name='a'>One<break time='700ms'/>two<break strength='strong'/>\
        <break/>three<break time='30s'/></voice>\
        <voice name='b'><mstts:express-as style='cheerful'>Four</mstts:express-as>\
        <bookmark mark='m'/><s>five</s><p>six</p></voice></speak>",
    );
    assert_eq!(
        s,
        vec![
            speak("a", "One", Prosody::default()),
            Segment::Silence { ms: 700 },
            speak("a", "two", Prosody::default()),
            Segment::Silence { ms: 1250 },
            speak("a", "three", Prosody::default()),
            Segment::Silence { ms: 5000 },
            speak("b", "Four five", Prosody::default()),
            Segment::Silence { ms: 200 },
            speak("b", "six", Prosody::default()),
            Segment::Silence { ms: 400 },
        ]
    );
}

#[test]
fn inner_text_elements() {
    let s = ok(
        "<speak><voice name='v'><say-as interpret-as='cardinal'>42</say-as> \
        <sub alias='World Wide Web Consortium'>W3C</sub> <emphasis level='strong'>now</emphasis> \
        <lang xml:lang='de-DE'>bitte</lang> <phoneme alphabet='ipa' ph='təˈmeɪtoʊ'>tomato</phoneme>\
        <!-- a comment --><![CDATA[ & more]]></voice></speak>",
    );
    assert_eq!(
        s,
        vec![speak(
            "v",
            "42 World Wide Web Consortium now bitte tomato & more",
            Prosody::default()
        )]
    );
}

#[test]
fn empty_and_whitespace_only() {
    assert!(ok("<speak/>").is_empty());
    assert!(ok("<speak>\n  <voice name='v'>  </voice>\n</speak>").is_empty());
}

#[test]
fn not_xml() {
    let m = err("hello there");
    assert!(m.contains("not SSML"), "{m}");
    let m = err("<speak><voice name='v'>hi</speak>");
    assert!(m.contains("not well-formed"), "{m}");
    let m = err("<speak><voice name='v'>hi</voice>");
    assert!(
        m.contains("not closed") || m.contains("not well-formed"),
        "{m}"
    );
    let m = err("<speak><voice name='v'>a &bogus; b</voice></speak>");
    assert!(m.contains("entity") || m.contains("not well-formed"), "{m}");
}

#[test]
fn wrong_root() {
    let m = err("<html><voice name='v'>hi</voice></html>");
    assert!(
        m.contains("root element must be <speak>, not <html>"),
        "{m}"
    );
    assert!(m.starts_with("line 1, column 1:"), "{m}");
    let m = err("<speak><voice name='v'>a</voice></speak><speak/>");
    assert!(m.contains("after the closing </speak>"), "{m}");
    let m = err("<speak><speak/></speak>");
    assert!(m.contains("only be the root"), "{m}");
}

#[test]
fn missing_voice_name() {
    let m = err("<speak version='1.0'>\n  <voice xml:lang='en-US'>Hello</voice></speak>");
    assert_eq!(m, "line 2, column 3: <voice> is missing its name attribute");
    let m = err("<speak><voice name='  '>Hello</voice></speak>");
    assert!(m.contains("empty name"), "{m}");
}

#[test]
fn doctype_billion_laughs() {
    let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<speak><voice name="v">&lol4;</voice></speak>"#;
    let m = err(bomb);
    assert!(m.contains("DOCTYPE declarations are not allowed"), "{m}");
    assert!(m.starts_with("line 2, column 1"), "{m}");
    // An external entity (XXE) is rejected the same way.
    let m = err(
        r#"<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]><speak><voice name="v">&x;</voice></speak>"#,
    );
    assert!(m.contains("DOCTYPE"), "{m}");
}

#[test]
fn depth_bomb() {
    let mut doc = String::from("<speak><voice name='v'>");
    for _ in 0..5_000 {
        doc.push_str("<emphasis>");
    }
    doc.push('x');
    let m = err(&doc);
    assert!(m.contains("nested too deeply (at most 32 levels)"), "{m}");
}

#[test]
fn element_and_text_limits() {
    let mut doc = String::from("<speak><voice name='v'>");
    for _ in 0..2100 {
        doc.push_str("<break time='1ms'/>");
    }
    doc.push_str("</voice></speak>");
    let m = err(&doc);
    assert!(m.contains("too many elements (at most 2000)"), "{m}");

    let doc = format!(
        "<speak><voice name='v'>{}</voice></speak>",
        "a ".repeat(15_000)
    );
    let m = err(&doc);
    assert!(m.contains("too much text"), "{m}");

    // Entity expansion counts after expansion.
    let limits = SsmlLimits {
        max_text_chars: 10,
        ..SsmlLimits::default()
    };
    let m = err_with("<speak><voice name='v'>&amp;&amp;&amp;&amp;&amp;&amp;&amp;&amp;&amp;&amp;&amp;</voice></speak>", &limits);
    assert!(m.contains("too much text"), "{m}");
}

#[test]
fn oversized_document() {
    let doc = format!(
        "<speak><voice name='v'>{}</voice></speak>",
        "x".repeat(70 * 1024)
    );
    let m = err(&doc);
    assert!(m.contains("bytes; at most 65536"), "{m}");
}

#[test]
fn text_outside_voice() {
    let m = err("<speak>Hello <voice name='v'>there</voice></speak>");
    assert!(m.contains("must be inside a <voice"), "{m}");
    let m = err("<speak><p>Hello</p></speak>");
    assert!(m.contains("must be inside a <voice"), "{m}");
}

#[test]
fn unknown_element() {
    let m = err("<speak><voice name='v'><blink>hi</blink></voice></speak>");
    assert!(m.contains("unsupported element <blink>"), "{m}");
    assert!(m.starts_with("line 1, column 24"), "{m}");
}

#[test]
fn bad_attribute_values() {
    for (doc, want) in [
        ("<break time='soon'/>", "<break> time \"soon\""),
        ("<break time='-5s'/>", "<break> time"),
        ("<break time='5 minutes'/>", "<break> time"),
        ("<break strength='huge'/>", "<break> strength"),
        ("<prosody rate='warp'>x</prosody>", "<prosody> rate"),
        ("<prosody pitch='+10'>x</prosody>", "<prosody> pitch"),
        ("<prosody volume='1000'>x</prosody>", "<prosody> volume"),
        ("<sub>x</sub>", "<sub> is missing its alias"),
    ] {
        let m = err(&format!("<speak><voice name='v'>{doc}</voice></speak>"));
        assert!(m.contains(want), "{doc}: {m}");
    }
}

/// A tiny deterministic PRNG (xorshift64*), so the test needs no extra crates.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutations_never_panic() {
    let seeds = [
        "<speak version='1.0' xml:lang='en-US'><voice name='en-US-JennyNeural'>Hello &amp; <prosody rate='+20%' pitch='-2st' volume='+6dB'>world</prosody><break time='500ms'/><s>Yes.</s></voice></speak>",
        "<?xml version='1.0'?><speak><voice name='a'><sub alias='b'>c</sub><say-as interpret-as='date'>2020</say-as><![CDATA[<x>]]><!-- c --></voice></speak>",
        "<speak><voice name='v'><mstts:express-as style='x'><emphasis>e</emphasis></mstts:express-as><break strength='weak'/>&#x263A;&#65;</voice></speak>",
    ];
    let pieces = [
        "<",
        ">",
        "/",
        "&",
        ";",
        "'",
        "\"",
        "=",
        "<!DOCTYPE x>",
        "<![CDATA[",
        "]]>",
        "&#",
        "&#x",
        "<voice>",
        "</voice>",
        "<break/>",
        "é",
        "\u{0}",
        "\u{FFFF}",
        "<?",
        "?>",
        "<!--",
        "-->",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let limits = SsmlLimits::default();
    let mut accepted = 0;
    for i in 0..4000 {
        let mut s: Vec<char> = seeds[i % seeds.len()].chars().collect();
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(s.len() + 1);
            match rng.below(4) {
                0 if at < s.len() => {
                    s.remove(at);
                }
                1 => {
                    let p = pieces[rng.below(pieces.len())];
                    for (k, c) in p.chars().enumerate() {
                        s.insert(at + k, c);
                    }
                }
                2 if at < s.len() => {
                    s[at] = char::from(b' ' + (rng.below(95)) as u8);
                }
                _ => {
                    let end = (at + rng.below(20)).min(s.len());
                    s.truncate(end.max(at.min(s.len())));
                }
            }
        }
        let doc: String = s.into_iter().collect();
        match parse(&doc, &limits) {
            Ok(_) => accepted += 1,
            Err(EngineError::BadSsml(m)) => assert!(!m.is_empty()),
            Err(e) => panic!("wrong error kind for {doc:?}: {e}"),
        }
    }
    assert!(accepted > 0 && accepted < 4000, "accepted {accepted}");
}
