//! Webhooks for the micro-benchmarks: the GWEN fixtures and synthetic ones of a chosen size.

// Each bench uses a part of these helpers.
#![allow(dead_code)]

use std::path::Path;

/// Returns the single-webhook fixtures of tests/fixtures/gwen as (file stem, bytes), smallest first.
pub fn fixtures() -> Vec<(String, Vec<u8>)> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gwen");
    let mut fixtures: Vec<(String, Vec<u8>)> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", folder.display()))
        .map(|entry| entry.expect("fixture folder entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("fixture is UTF-8");
            (name, text.trim().as_bytes().to_vec())
        })
        // batch.json is an array of webhooks, not one webhook.
        .filter(|(_, bytes)| bytes.first() == Some(&b'{'))
        .collect();
    fixtures.sort_by_key(|(_, bytes)| bytes.len());
    fixtures
}

/// Returns a webhook of about `size` bytes (at least about 400): the fields GWEN documents, with
/// `state.note` padding it out. `user` varies the `userId`, so keys spread over partitions.
pub fn webhook(size: usize, user: usize) -> Vec<u8> {
    let head = format!(
        concat!(
            r#"{{"type":"mission_update","userId":"user-{user:06}-3f6c1b2e-8a4d-4f7e","#,
            r#""timestamp":1764853200,"segmentId":"0d9e2c41-7b6a-4e13-a5f8-2b7c9d1e3f60","#,
            r#""productId":"b4a1c7e2-5d3f-4a8b-9c6e-1f2d3e4a5b6c","#,
            r#""updates":[{{"field":"progress","previous":41,"current":42}}],"#,
            r#""state":{{"missionId":"weekly-7","step":3,"steps":5,"completed":false,"note":""#
        ),
        user = user
    );
    let tail = r#""}}"#;
    let padding = size.saturating_sub(head.len() + tail.len());
    let mut text = head;
    text.extend(std::iter::repeat_n('x', padding));
    text.push_str(tail);
    text.into_bytes()
}
