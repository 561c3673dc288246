//! Properties: `parse` never panics, whatever the JSON; node ids write back to what they parse
//! from; `eventTime` keeps its instant through any accepted spelling.

use metamesh_openlineage::{parse, parse_bytes, DatasetKey, JobKey, NodeId, Value};
use proptest::prelude::*;
use serde_json::json;

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "[a-zA-Z0-9:#/ ._-]{0,12}".prop_map(Value::from),
        Just(json!("3f5e83fa-3480-44ff-99c5-ff943904e5e8")),
        Just(json!("2020-12-28T19:51:01.641Z")),
        Just(json!("COMPLETE")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("run".to_owned()),
                        Just("job".to_owned()),
                        Just("dataset".to_owned()),
                        Just("runId".to_owned()),
                        Just("namespace".to_owned()),
                        Just("name".to_owned()),
                        Just("facets".to_owned()),
                        Just("parent".to_owned()),
                        Just("eventTime".to_owned()),
                        Just("eventType".to_owned()),
                        Just("inputs".to_owned()),
                        Just("outputs".to_owned()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                ),
                0..6,
            )
            .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// A valid RunEvent whose every field is a candidate for replacement.
fn run_event() -> Value {
    json!({
        "eventType": "COMPLETE",
        "eventTime": "2020-12-28T19:52:00.001+10:00",
        "producer": "p",
        "run": {"runId": "41fb5137-f0fd-4ee5-ba5c-56f8571d1bd7", "facets": {"parent": {
            "run": {"runId": "3f5e83fa-3480-44ff-99c5-ff943904e5e8"},
            "job": {"namespace": "n", "name": "p"}
        }}},
        "job": {"namespace": "n", "name": "j", "facets": {}},
        "inputs": [{"namespace": "n", "name": "i", "facets": {}, "inputFacets": {}}],
        "outputs": [{"namespace": "n", "name": "o", "facets": {}, "outputFacets": {}}]
    })
}

/// Every JSON pointer into `value`, the root included.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                pointers(v, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics(value in any_json()) {
        if let Err(e) = parse(&value) {
            prop_assert!(!e.field.is_empty() && !e.message.is_empty());
        }
    }

    #[test]
    fn parse_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_bytes(&bytes);
    }

    /// One field of a valid event replaced by anything: an answer, and a refusal names a field.
    #[test]
    fn replaced_fields_never_panic(index in any::<prop::sample::Index>(), new in any_json()) {
        let mut event = run_event();
        let mut all = Vec::new();
        pointers(&event, String::new(), &mut all);
        let at = index.get(&all).clone();
        *event.pointer_mut(&at).unwrap() = new;
        if let Err(e) = parse(&event) {
            prop_assert!(!e.field.is_empty(), "{}", e);
        }
    }

    #[test]
    fn node_ids_round_trip(node in node_id()) {
        let text = node.to_string();
        prop_assert_eq!(NodeId::parse(&text), Ok(node), "{}", text);
    }

    /// Whatever string parses writes back to itself (UUIDs lowercased), and parses again the same.
    #[test]
    fn parsed_node_ids_are_stable(text in node_id_like()) {
        if let Ok(node) = NodeId::parse(&text) {
            let written = node.to_string();
            prop_assert!(written.eq_ignore_ascii_case(&text), "{} -> {}", text, written);
            prop_assert_eq!(NodeId::parse(&written), Ok(node));
        }
    }

    /// Any instant of years 1..9999, written with any offset and extra sub-millisecond digits,
    /// reads back as its millisecond.
    #[test]
    fn event_times_keep_their_instant(
        ms in -62_135_596_800_000_i64..253_402_300_799_999,
        offset_minutes in -18 * 60..=18 * 60_i32,
        extra in "[0-9]{0,9}",
        zone_style in 0..3_u8,
    ) {
        let utc = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
        let offset = time::UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
        let local = utc.to_offset(offset);
        let (sign, abs) = if offset_minutes < 0 { ('-', -offset_minutes) } else { ('+', offset_minutes) };
        let zone = match (zone_style, offset_minutes) {
            (0, 0) => "Z".to_owned(),
            (1, _) => format!("{sign}{:02}{:02}", abs / 60, abs % 60),
            _ => format!("{sign}{:02}:{:02}", abs / 60, abs % 60),
        };
        let text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{extra}{zone}",
            local.year(), u8::from(local.month()), local.day(), local.hour(), local.minute(), local.second(),
            local.millisecond(),
        );
        let event = json!({"eventTime": text, "job": {"namespace": "n", "name": "j"}});
        prop_assert_eq!(parse(&event).map(|e| e.event_time_ms), Ok(ms), "{}", text);
    }
}

/// Namespaces as producers write them: plain words, or URIs whose colons are followed by `//`
/// or a port.
fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_.-]{0,10}",
        ("[a-z]{2,8}", "[a-z0-9.-]{1,10}", prop::option::of(1..65535_u32), "(/[a-z0-9_.-]{1,6}){0,2}").prop_map(
            |(scheme, host, port, path)| match port {
                Some(port) => format!("{scheme}://{host}:{port}{path}"),
                None => format!("{scheme}://{host}{path}"),
            }
        ),
    ]
}

/// Names: anything without `#` or a line break that starts with neither a digit nor `//`
/// (Marquez's rule cannot tell those from the namespace); last parts may hold colons, but not
/// at the end (Marquez's first split drops a trailing one).
fn last_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_/<][a-zA-Z0-9_./<>,:-]{0,15}".prop_filter("not // nor :$", |n| !n.starts_with("//") && !n.ends_with(':'))
}

/// A dataset name in the middle of a field id: no colon at all.
fn middle_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_/][a-zA-Z0-9_./<>,-]{0,15}".prop_filter("not //", |n| !n.starts_with("//"))
}

fn uuid() -> impl Strategy<Value = String> {
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
}

fn dataset() -> impl Strategy<Value = DatasetKey> {
    (namespace(), last_name()).prop_map(|(namespace, name)| DatasetKey { namespace, name })
}

fn job() -> impl Strategy<Value = JobKey> {
    (namespace(), last_name()).prop_map(|(namespace, name)| JobKey { namespace, name })
}

/// The dataset of a field id, whose name is not the last part.
fn field_dataset() -> impl Strategy<Value = DatasetKey> {
    (namespace(), middle_name()).prop_map(|(namespace, name)| DatasetKey { namespace, name })
}

fn node_id() -> impl Strategy<Value = NodeId> {
    prop_oneof![
        dataset().prop_map(NodeId::Dataset),
        job().prop_map(NodeId::Job),
        uuid().prop_map(NodeId::Run),
        (field_dataset(), last_name()).prop_map(|(dataset, field)| NodeId::DatasetField { dataset, field }),
        (dataset(), uuid()).prop_map(|(dataset, version)| NodeId::DatasetVersion { dataset, version }),
        (job(), uuid()).prop_map(|(job, version)| NodeId::JobVersion { job, version }),
        (field_dataset(), last_name(), uuid()).prop_map(|(dataset, field, version)| NodeId::DatasetFieldVersion {
            dataset,
            field,
            version
        }),
    ]
}

/// Strings that look like node ids, separators and all.
fn node_id_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9_./-]{0,6}",
        Just(":".to_owned()),
        Just("#".to_owned()),
        Just("//".to_owned()),
        Just("\n".to_owned()),
        uuid(),
        Just("AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE".to_owned()),
    ];
    (
        prop_oneof![Just("dataset:"), Just("datasetField:"), Just("job:"), Just("run:"), Just("Dataset:")],
        prop::collection::vec(piece, 0..8),
    )
        .prop_map(|(prefix, pieces)| format!("{prefix}{}", pieces.concat()))
}
