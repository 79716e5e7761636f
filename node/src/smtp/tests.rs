use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};

use crate::smtp::{Body, DataPace, count_received, read_body, rfc5322_date};

#[test]
fn dates_are_rfc5322() {
    assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_eq!(
        rfc5322_date(1_795_349_045),
        "Sun, 22 Nov 2026 12:04:05 +0000"
    );
    assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
}

#[test]
fn received_headers_are_counted_in_the_header_section_only() {
    let message = b"Received: a\r\nreceived: b\r\nSubject: x\r\n\r\nReceived: in the body\r\n";
    assert_eq!(count_received(message), 2);
}

#[test]
fn the_data_pace_allows_a_grace_then_a_minimum_rate() {
    let pace = DataPace {
        grace: Duration::from_secs(60),
        min_bytes_per_sec: 1024,
    };
    let secs = Duration::from_secs;
    assert!(!pace.too_slow(0, secs(60)));
    assert!(!pace.too_slow(10 * 1024, secs(70)));
    assert!(pace.too_slow(10 * 1024, secs(72)));
    assert!(pace.too_slow(160, secs(598)));
    let off = DataPace {
        min_bytes_per_sec: 0,
        ..pace
    };
    assert!(!off.too_slow(0, secs(100_000)));
}

/// A client that sends a line every `gap`, read at a high minimum rate with no grace, so a
/// second's gap is too slow.
async fn drip(lines: usize, gap: Duration) -> Body {
    let (client, server) = tokio::io::duplex(4096);
    let writer = tokio::spawn(async move {
        let mut client = client;
        for n in 0..lines {
            if client
                .write_all(format!("line {n}\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(gap).await;
        }
        let _ = client.write_all(b".\r\n").await;
    });
    let pace = DataPace {
        grace: Duration::ZERO,
        min_bytes_per_sec: 1_000_000,
    };
    let body = read_body(&mut BufReader::new(server), 1 << 20, pace)
        .await
        .unwrap();
    writer.abort();
    body
}

#[tokio::test]
async fn a_slow_drip_of_message_data_is_cut_off() {
    // Each line is well within the line timeout, but the data as a whole is too slow.
    assert!(matches!(
        drip(3, Duration::from_millis(1100)).await,
        Body::TooSlow
    ));
    // The same lines at once are a message.
    match drip(10, Duration::ZERO).await {
        Body::Message(data) => assert!(data.starts_with(b"line 0\r\n")),
        _ => panic!("a prompt client's message was refused"),
    }
}
