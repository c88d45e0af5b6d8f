//! Configuration errors name the file, the line and the key.
use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.toml"))
}

#[test]
fn the_example_is_valid_and_has_three_institutes() {
    let c = parse(EXAMPLE).unwrap();
    assert!(c.institutes.len() >= 3);
    assert!(c.institute("ibn-sina").is_some());
}

#[test]
fn unknown_key_names_the_key_and_line() {
    let err = parse("cluster = \"x\"\n\n[nodes]\nintervall = \"10s\"\n").unwrap_err().to_string();
    assert!(err.contains("intervall"), "{err}");
    assert!(err.contains("line 4") || err.contains(":4:"), "{err}");
    assert!(err.starts_with("test.toml"), "{err}");
}

#[test]
fn bad_duration_is_explained() {
    let err = parse("[nodes]\ninterval = \"10 parsecs\"\n").unwrap_err().to_string();
    assert!(err.contains("unknown unit"), "{err}");
}

#[test]
fn a_member_in_two_institutes_is_refused() {
    let err = parse("[[institutes]]\nid = \"a\"\naccounts = [\"x\"]\n[[institutes]]\nid = \"b\"\naccounts = [\"x\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`a` and `b`") && err.contains("`x`"), "{err}");
}

#[test]
fn duplicate_and_malformed_ids_are_refused() {
    assert!(
        parse("[[institutes]]\nid = \"a\"\n[[institutes]]\nid = \"a\"\n").unwrap_err().to_string().contains("twice")
    );
    assert!(parse("[[institutes]]\nid = \"Bad Id\"\n").unwrap_err().to_string().contains("Bad Id"));
}

#[test]
fn quota_errors_name_the_institute_and_the_key() {
    let err = parse(
        "[[institutes]]\nid = \"a\"\naccounts = [\"x\"]\n[institutes.quota]\ngpu_hours = 10\nperiod = \"fortnight\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("institute `a`") && err.contains("quota.period") && err.contains("fortnight"), "{err}");
    let err = parse("[[institutes]]\nid = \"a\"\naccounts = [\"x\"]\n[institutes.quota]\ngpu_hours = 10\nperiod = \"year\"\naccounts = { y = 5 }\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("quota.accounts.y"), "{err}");
    let err = parse("[[institutes]]\nid = \"a\"\n[institutes.quota]\ngpu_hours = 10\nperiod = \"year\"\nbudget = 3\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("budget"), "{err}");
}

#[test]
fn namespaces_are_refused_until_pods_are_attributed() {
    let err = parse("[[institutes]]\nid = \"a\"\nnamespaces = [\"ns\"]\n").unwrap_err().to_string();
    assert!(err.contains("institute `a`") && err.contains("namespaces") && err.contains("not supported"), "{err}");
}

#[test]
fn scheduler_kind_and_gpu_index_are_checked() {
    let err = parse("[scheduler]\nkind = \"pbs\"\n").unwrap_err().to_string();
    assert!(err.contains("pbs") && err.contains("slurm"), "{err}");
    let err = parse("[scheduler]\ngpu_index = \"pci\"\n").unwrap_err().to_string();
    assert!(err.contains("pci") && err.contains("minor"), "{err}");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Values that have broken parsers: extremes, wrong types, odd durations.
    fn hostile_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("0".to_string()),
            Just("-1".to_string()),
            Just("18446744073709551615".to_string()),
            Just("9223372036854775807".to_string()),
            Just("1e400".to_string()),
            Just("nan".to_string()),
            Just("\"\"".to_string()),
            Just("\"400d\"".to_string()),
            Just("\"99999999999999999999s\"".to_string()),
            Just("\"1ms\"".to_string()),
            Just("[]".to_string()),
            Just("{}".to_string()),
            "[a-z0-9\"\\[\\]{}=.,:_ -]{0,12}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Any key of the example set to a hostile value, or the file cut anywhere:
        /// parsing answers Ok or an error naming the file, and never panics.
        #[test]
        fn a_hostile_config_is_refused_not_crashed(line in 0usize..400, value in hostile_value(), cut in 0usize..20_000) {
            let mut lines: Vec<String> = EXAMPLE.lines().map(str::to_string).collect();
            let n = line % lines.len();
            if let Some((key, _)) = lines[n].split_once(" = ") {
                lines[n] = format!("{key} = {value}");
            }
            let text = lines.join("\n");
            for t in [text.as_str(), &text[..text.floor_char_boundary(cut.min(text.len()))]] {
                if let Err(e) = parse(t) {
                    prop_assert!(e.to_string().starts_with("test.toml"), "{}", e);
                }
            }
        }
    }
}

#[test]
fn the_examples_commented_alerts_are_the_defaults() {
    // Uncommented, the example's [alerts] block must say what the code does without it.
    let start = EXAMPLE.find("# [alerts]\n").expect("a commented [alerts] in the example");
    let end = start + EXAMPLE[start..].find("# Receivers:").unwrap();
    let mut text = String::from("[alerts]\n");
    for line in EXAMPLE[start..end].lines().filter_map(|l| l.strip_prefix("# ")) {
        if line.split_once(" = ").is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_')) {
            text += line;
            text += "\n";
        }
    }
    assert!(text.lines().count() > 10, "{text}");
    let c = parse(&text).unwrap();
    assert_eq!(format!("{:?}", c.alerts), format!("{:?}", Alerts::default()), "{text}");
}

#[test]
fn a_client_file_names_one_collector_or_several() {
    use crate::config::ClientFile;
    let at = std::path::Path::new("/home/ada/.config/jazari/client.toml");
    let one = ClientFile::parse("url = \"https://a:9470\"\ntoken_file = \"a.token\"\n", at).unwrap();
    assert_eq!(one.url.as_deref(), Some("https://a:9470"));
    assert_eq!(one.token_file.as_deref(), Some(std::path::Path::new("/home/ada/.config/jazari/a.token")));
    assert!(one.collectors.is_empty());
    let several = ClientFile::parse(
        "token_file = \"admin.token\"\n\n[[collector]]\nname = \"east\"\nurl = \"https://east:9470\"\n\n\
         [[collector]]\nurl = \"https://west:9470\"\ntoken_file = \"/etc/jazari/west.token\"\nca_file = \"west-ca.pem\"\n",
        at,
    )
    .unwrap();
    assert_eq!(several.collectors.len(), 2);
    assert_eq!(several.collectors[0].name.as_deref(), Some("east"));
    assert_eq!(several.collectors[0].token_file, None, "the file's own token_file applies");
    assert_eq!(several.collectors[1].token_file.as_deref(), Some(std::path::Path::new("/etc/jazari/west.token")));
    assert_eq!(
        several.collectors[1].ca_file.as_deref(),
        Some(std::path::Path::new("/home/ada/.config/jazari/west-ca.pem"))
    );
    let both = ClientFile::parse("url = \"https://a:9470\"\n[[collector]]\nurl = \"https://b:9470\"\n", at);
    assert!(both.unwrap_err().contains("either `url`"));
    let typo = ClientFile::parse("[[collector]]\nurl = \"https://b:9470\"\ntoken = \"x\"\n", at);
    assert!(typo.unwrap_err().contains("token"));
}

#[test]
fn the_client_example_is_valid() {
    let text = include_str!("../../config/client.example.toml");
    let f = crate::config::ClientFile::parse(text, Path::new("/etc/jazari/client.toml")).unwrap();
    assert_eq!(f.collectors.len(), 2);
    assert_eq!(f.token_file.as_deref(), Some(Path::new("/etc/jazari/admin.token")));
}
