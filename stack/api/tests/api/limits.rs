//! Device data cannot fill the database's disk: rate limits on logs and state
//! reports, the size of a report, the row cap and the retention of logs, the
//! clamp of device timestamps, escape sequences stripped from stored lines.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use turtle_api::App;
use turtle_fleet_api::{LogLineIn, LogQuery};

use crate::fixture::{Server, Stack, poll};

fn line(timestamp: Option<&str>, service: Option<&str>, message: &str) -> LogLineIn {
    LogLineIn {
        message: message.into(),
        service: service.map(str::to_string),
        timestamp: timestamp.map(str::to_string),
    }
}

/// Lines stored for a device, counted in the database.
async fn stored_lines(stack: &Stack, uuid: &str) -> i64 {
    stack
        .pg
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM device_logs WHERE device_uuid = $1::text::uuid",
            &[&uuid],
        )
        .await
        .unwrap()
        .get(0)
}

/// A device past its log budget gets 429 with Retry-After and what to do; a
/// batch larger than the whole budget is 413; another device has its own
/// budget; what was refused is not stored.
#[tokio::test]
async fn a_device_past_its_log_budget_gets_429() {
    let stack = Stack::start_with(&["--device-log-limit", "4KiB/m"]).await;
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    let other = stack.device(fleet, None).await;
    let as_device = stack.as_device(&device);

    // 30 lines of 36 bytes: 30 * (36 + 64) = 3000 of 4096.
    let batch: Vec<LogLineIn> = (0..30)
        .map(|i| {
            line(
                None,
                None,
                &format!("line {i:03} of a chatty device........."),
            )
        })
        .collect();
    assert_eq!(batch[0].message.len(), 36);
    as_device.post_logs(&batch).await.unwrap();
    let e = as_device.post_logs(&batch).await.unwrap_err();
    assert_eq!(e.status(), Some(429), "{e}");
    // 1904 bytes missing at 4096 a minute: 28 s.
    assert_eq!(e.retry_after(), Some(28), "{e}");
    assert_eq!(
        e.api_message().unwrap(),
        format!(
            "past the log budget of device {} (--device-log-limit 4 KiB/1m): send again in 28 s \
             (Retry-After)",
            device.uuid
        )
    );
    assert_eq!(stored_lines(&stack, &device.uuid).await, 30);

    // Another device spends its own budget.
    stack.as_device(&other).post_logs(&batch).await.unwrap();

    // More than the whole budget at once never fits: 413, not a wait.
    let huge: Vec<LogLineIn> = (0..50)
        .map(|_| line(None, None, &"x".repeat(100)))
        .collect();
    let e = stack.as_device(&other).post_logs(&huge).await.unwrap_err();
    assert_eq!(e.status(), Some(413), "{e}");
    assert!(
        e.api_message()
            .unwrap()
            .contains("costs 8200 bytes, more than the log budget"),
        "{e}"
    );
}

/// A state report is at most 64 KiB (413 past it), and a device sends at most
/// its rate of them (429 with Retry-After past it).
#[tokio::test]
async fn state_reports_are_capped_and_rate_limited() {
    let stack = Stack::start_with(&["--device-state-limit", "2/m"]).await;
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    let as_device = stack.as_device(&device);

    let sized = |bytes: usize| {
        let mut report = serde_json::json!({"blob": ""});
        let overhead = report.to_string().len();
        report["blob"] = serde_json::Value::String("x".repeat(bytes - overhead));
        assert_eq!(report.to_string().len(), bytes);
        report
    };
    let e = as_device
        .report_state(&sized((64 << 10) + 1))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(413), "{e}");
    assert!(
        e.api_message()
            .unwrap()
            .contains("larger than this route takes (64 KiB)"),
        "{e}"
    );
    let e = as_device.report_state(&sized(2 << 20)).await.unwrap_err();
    assert_eq!(e.status(), Some(413), "{e}");

    as_device.report_state(&sized(64 << 10)).await.unwrap();
    as_device
        .report_state(&serde_json::json!({"n": 2}))
        .await
        .unwrap();
    let e = as_device
        .report_state(&serde_json::json!({"n": 3}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(429), "{e}");
    assert_eq!(e.retry_after(), Some(30));
    assert!(
        e.api_message()
            .unwrap()
            .contains("(--device-state-limit 2/1m): send again in 30 s"),
        "{e}"
    );
    let shown = stack.admin().device(&device.uuid).await.unwrap();
    assert_eq!(shown.state, Some(serde_json::json!({"n": 2})));
}

/// A device keeps at most --log-max-lines lines, the newest received, after
/// every post, posts at once included; an api started with a lower cap trims
/// every device to it.
#[tokio::test]
async fn the_row_cap_holds() {
    let stack = Stack::start_with(&["--log-max-lines", "50"]).await;
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    let as_device = stack.as_device(&device);
    let batch = |b: usize| -> Vec<LogLineIn> {
        (0..40)
            .map(|i| line(None, None, &format!("{b}-{i:02}")))
            .collect()
    };

    for b in 0..3 {
        as_device.post_logs(&batch(b)).await.unwrap();
        assert!(stored_lines(&stack, &device.uuid).await <= 50);
    }
    assert_eq!(stored_lines(&stack, &device.uuid).await, 50);
    let query = LogQuery {
        limit: Some(100),
        ..Default::default()
    };
    let kept = stack
        .admin()
        .device_logs(&device.uuid, &query)
        .await
        .unwrap();
    let first = kept.first().unwrap().message.clone();
    let last = kept.last().unwrap().message.clone();
    assert_eq!((first.as_str(), last.as_str()), ("1-30", "2-39"));

    // Five posts at once: each trims under the device's lock.
    let batches: Vec<Vec<LogLineIn>> = (3..8).map(batch).collect();
    let posts = batches.iter().map(|b| as_device.post_logs(b));
    for answer in futures_util::future::join_all(posts).await {
        answer.unwrap();
    }
    assert_eq!(stored_lines(&stack, &device.uuid).await, 50);

    // A restart with a lower cap trims at start, without a post.
    let app = App::start_with_env(
        &stack.files.args(&stack.pg, &["--log-max-lines", "10"]),
        &|_| None,
    )
    .await
    .unwrap();
    let _lower = Server::start(app).await;
    poll("the new cap is applied at start", 30, || async {
        (stored_lines(&stack, &device.uuid).await == 10).then_some(())
    })
    .await;
}

/// Lines past the retention go without any post (the sweep); newer ones stay.
#[tokio::test]
async fn lines_past_the_retention_are_swept() {
    let stack =
        Stack::start_with(&["--log-retention", "1h", "--log-sweep-interval", "100ms"]).await;
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    stack
        .as_device(&device)
        .post_logs(&[line(None, None, "old"), line(None, None, "new")])
        .await
        .unwrap();
    // The old line arrived two hours ago.
    let db = stack.pg.client().await;
    db.execute(
        "UPDATE device_logs SET received_at = now() - interval '2 hours' WHERE message = 'old'",
        &[],
    )
    .await
    .unwrap();
    poll("the sweep deletes the old line", 30, || async {
        let left: Vec<String> = db
            .query("SELECT message FROM device_logs ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        (left == ["new"]).then_some(())
    })
    .await;
}

/// A device's timestamps are moved into [arrival - retention, arrival]: a line
/// dated 9999 does not sit at the top of "the last N lines".
#[tokio::test]
async fn device_timestamps_are_clamped_to_their_arrival() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    let as_device = stack.as_device(&device);
    let before = OffsetDateTime::now_utc();
    as_device
        .post_logs(&[
            line(Some("9999-12-31T23:59:59Z"), None, "from the future"),
            line(Some("1970-01-01T00:00:00Z"), None, "from the past"),
        ])
        .await
        .unwrap();
    as_device
        .post_logs(&[line(None, None, "now")])
        .await
        .unwrap();
    let after = OffsetDateTime::now_utc();

    let admin = stack.admin();
    let last = admin
        .device_logs(
            &device.uuid,
            &LogQuery {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(last[0].message, "now");
    let all = admin
        .device_logs(&device.uuid, &LogQuery::default())
        .await
        .unwrap();
    let messages: Vec<&str> = all.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["from the past", "from the future", "now"]);
    let time = |i: usize| OffsetDateTime::parse(&all[i].timestamp, &Rfc3339).unwrap();
    let week = time::Duration::hours(168);
    let slack = time::Duration::seconds(5);
    assert!(time(0) >= before - week - slack && time(0) <= after - week + slack);
    assert!(time(1) >= before - slack && time(1) <= after + slack);
}

/// Terminal escape sequences and control characters (but tab) never reach the
/// database; line breaks become spaces.
#[tokio::test]
async fn escape_sequences_are_stripped_from_stored_lines() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    stack
        .as_device(&device)
        .post_logs(&[
            line(
                None,
                Some("web\u{1b}[1m"),
                "\u{1b}[2J\u{1b}]0;pwned\u{7}hello \u{1b}[31mred\u{1b}[0m\r\nnext\tcolumn\u{8}",
            ),
            line(
                None,
                None,
                "\u{1b}]8;;http://evil.example\u{1b}\\click\u{1b}]8;;\u{1b}\\ \u{9b}31mc1\u{7f}",
            ),
        ])
        .await
        .unwrap();
    let rows = stack
        .pg
        .client()
        .await
        .query("SELECT service, message FROM device_logs ORDER BY id", &[])
        .await
        .unwrap();
    let stored: Vec<(Option<String>, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        stored,
        [
            (
                Some("web".to_string()),
                "hello red next\tcolumn".to_string()
            ),
            (None, "click c1".to_string()),
        ]
    );
}
