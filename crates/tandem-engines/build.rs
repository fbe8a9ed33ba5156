//! Links the system text-to-speech libraries: flite (always) and espeak-ng (feature `espeak`).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for lib in [
        "flite_cmu_us_slt",
        "flite_cmu_us_rms",
        "flite_cmu_us_awb",
        "flite_cmu_us_kal16",
        "flite_usenglish",
        "flite_cmulex",
        "flite",
        "m",
    ] {
        println!("cargo:rustc-link-lib={lib}");
    }
    if std::env::var_os("CARGO_FEATURE_ESPEAK").is_some() {
        println!("cargo:rustc-link-lib=espeak-ng");
    }
}
