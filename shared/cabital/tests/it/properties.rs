//! Properties: validation and webhook parsing never panic on anything, and whatever
//! validation accepts, the (independently written) sandbox accepts too.

use gateway_cabital::{CabitalClient, ClientConfig, WebhookNotification, validate_new_case};
use gateway_signing::{CredentialSource, CredentialStore, Credentials};
use proptest::prelude::*;
use serde_json::{Value, json};

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "externalCaseId",
                    "screenType",
                    "fullName",
                    "individualInfo",
                    "organizationInfo",
                    "gender",
                    "dob",
                    "nationality",
                    "residentialCountry",
                    "x",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Cases near the rules' edges: each field drawn from valid and invalid values, valid
/// ones weighted up so that a good share of cases passes validation.
fn near_valid_case() -> impl Strategy<Value = Value> {
    let ext = prop_oneof![
        12 => "[a-zA-Z0-9-]{1,36}",
        1 => "[a-z]{37,40}",
        1 => Just(String::new()),
        1 => "é{30,37}",
        3 => "[ぁ-ゖ]{1,36}",
    ];
    let screen = prop_oneof![
        12 => Just("INDIVIDUAL"), 4 => Just("ORGANISATION"), 1 => Just("ORGANIZATION"), 1 => Just("individual"),
    ];
    let name = prop_oneof![
        12 => "[A-Za-z][A-Za-z ]{0,40}",
        1 => Just(String::new()),
        1 => Just("  ".to_owned()),
        1 => "[A-Za-z]{250,260}",
        3 => "山田 [ぁ-ゖ]{1,5}",
    ];
    let gender = prop_oneof![8 => Just("MALE"), 8 => Just("FEMALE"), 1 => Just("OTHER"), 1 => Just("male")];
    let dob = prop_oneof![
        12 => (1890i32..2030, 1u8..=13, 1u8..=31).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        1 => Just("2002/02/02".to_owned()),
        1 => Just("2002-2-2".to_owned()),
    ];
    let country = prop_oneof![
        12 => prop::sample::select(vec!["JPN", "HKG", "GBR", "USA", "SGP", "ATA", "DEU", "BRA"]),
        1 => prop::sample::select(vec!["ZZZ", "jpn", "UK", "XKX"]),
    ];
    let org = prop_oneof![
        8 => Just(json!({})),
        4 => Just(json!({"registrationNumber": "123"})),
        1 => Just(Value::Null),
        1 => Just(json!("x")),
    ];
    (ext, screen, name, gender, dob, country.clone(), country, org, prop::bool::weighted(0.8)).prop_map(
        |(ext, screen, name, gender, dob, nat, res, org, with_individual)| {
            let mut v = json!({"externalCaseId": ext, "screenType": screen, "fullName": name, "organizationInfo": org});
            if with_individual {
                v["individualInfo"] =
                    json!({"gender": gender, "dob": dob, "nationality": nat, "residentialCountry": res});
            }
            v
        },
    )
}

proptest! {
    #[test]
    fn validation_never_panics_on_arbitrary_json(v in arbitrary_json()) {
        let _ = validate_new_case(&v, today());
        let _ = gateway_cabital::validate_decision(&v);
    }

    #[test]
    fn webhook_parsing_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = serde_json::from_slice::<WebhookNotification>(&bytes);
    }

    #[test]
    fn webhook_parsing_never_panics_on_arbitrary_json(v in arbitrary_json()) {
        let _ = serde_json::from_value::<WebhookNotification>(v);
    }
}

#[test]
fn whatever_validation_accepts_the_sandbox_accepts() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = gateway_sandbox::SandboxConfig::with_credential("prop-key", "prop-secret");
    config.reject_duplicate_external_id = false;
    config.seed = Some(3);
    let sandbox = rt.block_on(gateway_sandbox::spawn(config)).unwrap();
    let store = CredentialStore::new(
        CredentialSource::Static(Credentials::new("prop-key", "prop-secret").unwrap()),
        std::time::Duration::from_secs(60),
    );
    let client = CabitalClient::new(ClientConfig::new(sandbox.base_url().parse().unwrap()), store).unwrap();
    let accepted = std::cell::Cell::new(0u32);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 300, ..ProptestConfig::default() });
    runner
        .run(&near_valid_case(), |v| {
            if let Ok(case) = validate_new_case(&v, today()) {
                accepted.set(accepted.get() + 1);
                let answer = rt.block_on(client.create_case(&case));
                prop_assert!(answer.is_ok(), "we accepted, the sandbox refused: {:?}", answer.err());
            }
            Ok(())
        })
        .unwrap();
    // The generator reaches valid cases often enough for the property to mean something.
    let accepted = accepted.get();
    assert!(accepted >= 10, "only {accepted} generated cases were valid");
}
