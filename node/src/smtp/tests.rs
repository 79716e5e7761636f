use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::smtp::{Body, DataPace, complete_submission, count_received, read_body, rfc5322_date};

/// A node's message memory of `kib` KiB.
fn memory(kib: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(kib))
}

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
    let body = read_body(&mut BufReader::new(server), 1 << 20, pace, &memory(1 << 20))
        .await
        .unwrap()
        .0;
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

/// Reads one DATA body from `input` and returns what it was and the bytes left for the command
/// loop.
async fn body_and_rest(input: &[u8]) -> (Body, Vec<u8>) {
    let (mut client, server) = tokio::io::duplex(1 << 16);
    client.write_all(input).await.unwrap();
    drop(client);
    let pace = DataPace {
        grace: Duration::from_secs(60),
        min_bytes_per_sec: 0,
    };
    let mut reader = BufReader::new(server);
    let (body, _) = read_body(&mut reader, 1 << 20, pace, &memory(1 << 20))
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut rest)
        .await
        .unwrap();
    (body, rest)
}

/// The SMTP smuggling variants (CVE-2023-51764/51765/51766): a message with a non-standard
/// end of data followed by a second transaction, then the real end. The whole is one message,
/// refused, and the command loop gets only what follows the real CRLF "." CRLF.
#[tokio::test]
async fn a_smuggled_second_message_stays_inside_the_first() {
    let smuggled = b"MAIL FROM:<ceo@bank.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n\
                     From: ceo@bank.test\r\nSubject: smuggled\r\n\r\npay now\r\n.\r\nQUIT\r\n";
    for fake_end in [
        &b"\n.\n"[..],
        b"\n.\r\n",
        b"\r.\r\n",
        b"\r\n.\r",
        b"\r\n.\n",
        b"\r\n.\r\r\n",
    ] {
        let mut input = b"From: a@outside.test\r\nSubject: outer\r\n\r\nhello".to_vec();
        input.extend_from_slice(fake_end);
        input.extend_from_slice(smuggled);
        let (body, rest) = body_and_rest(&input).await;
        let shown = String::from_utf8_lossy(fake_end).escape_debug().to_string();
        assert!(
            matches!(body, Body::Bad(reply) if reply.to_string().starts_with("550 5.6.0 Bare CR or LF")),
            "{shown}: the message was not refused"
        );
        assert_eq!(
            rest, b"QUIT\r\n",
            "{shown}: the command loop got the wrong bytes"
        );
    }
}

/// A dot line after an overlong line ends the data only if the long line ended in CRLF.
#[tokio::test]
async fn a_dot_after_a_long_line_ends_data_only_after_crlf() {
    let long = "x".repeat(5_000);
    let (body, rest) = body_and_rest(format!("{long}\r\n.\r\nQUIT\r\n").as_bytes()).await;
    assert!(matches!(body, Body::Bad(reply) if reply.text.contains("longer than 998")));
    assert_eq!(rest, b"QUIT\r\n");
    let (body, rest) =
        body_and_rest(format!("{long}\n.\r\nRSET\r\nmore\r\n.\r\nQUIT\r\n").as_bytes()).await;
    assert!(matches!(body, Body::Bad(_)));
    assert_eq!(rest, b"QUIT\r\n");
}

/// Proper messages still end at CRLF "." CRLF, dot-stuffing is undone, and an empty message is
/// a lone dot.
#[tokio::test]
async fn a_proper_message_ends_at_the_first_crlf_dot_crlf() {
    let (body, rest) = body_and_rest(b"a\r\n..b\r\n.\r\nQUIT\r\n").await;
    assert!(matches!(&body, Body::Message(data) if data == b"a\r\n.b\r\n"));
    assert_eq!(rest, b"QUIT\r\n");
    let (body, rest) = body_and_rest(b".\r\nNOOP\r\n").await;
    assert!(matches!(&body, Body::Message(data) if data.is_empty()));
    assert_eq!(rest, b"NOOP\r\n");
}

/// Message data takes its share of the node's message memory as it arrives and gives it back
/// when answered; a message that finds the memory used up is refused for now, read to its end
/// (the session stays in step), and holds nothing.
#[tokio::test]
async fn message_data_is_held_within_the_nodes_message_memory() {
    let memory = memory(1024);
    let pace = DataPace {
        grace: Duration::from_secs(60),
        min_bytes_per_sec: 0,
    };
    let line = format!("{}\r\n", "x".repeat(998));
    let message = |n_lines: usize| {
        let mut input = line.repeat(n_lines);
        input.push_str(".\r\nQUIT\r\n");
        input
    };
    let read = |input: String| {
        let memory = memory.clone();
        async move {
            let (mut client, server) = tokio::io::duplex(1 << 16);
            let writer = tokio::spawn(async move { client.write_all(input.as_bytes()).await });
            let mut reader = BufReader::new(server);
            let read = read_body(&mut reader, 1 << 30, pace, &memory)
                .await
                .unwrap();
            writer.await.unwrap().unwrap();
            read
        }
    };
    // 600 KiB: within the 1 MiB, and held until the answer.
    let (body, held) = read(message(600)).await;
    assert!(matches!(body, Body::Message(_)));
    assert!(held.is_some());
    assert!(memory.available_permits() < 1024 - 590);
    // Another 600 KiB while the first is held: refused for now, nothing held.
    let (second, none) = read(message(600)).await;
    assert!(matches!(second, Body::NoMemory));
    assert!(none.is_none());
    drop(held);
    assert_eq!(memory.available_permits(), 1024);
    let (third, _held) = read(message(600)).await;
    assert!(matches!(third, Body::Message(_)));
}

/// A random MIME tree as a message: up to `budget` parts, nesting multiparts and message/rfc822
/// at random, with random header fields.
fn random_message(rng: &mut rand::rngs::StdRng, budget: &mut usize, depth: usize) -> Vec<u8> {
    use rand::Rng;
    let mut out = Vec::new();
    for n in 0..rng.random_range(0..4) {
        out.extend_from_slice(
            format!("X-Field-{n}: {}\r\n", "v".repeat(rng.random_range(0..80))).as_bytes(),
        );
    }
    *budget = budget.saturating_sub(1);
    match rng.random_range(0..10) {
        0..=3 if *budget > 0 && depth < 60 => {
            let boundary = format!("b{depth}x{}", rng.random_range(0..1000));
            out.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n")
                    .as_bytes(),
            );
            for _ in 0..rng.random_range(1..30) {
                if *budget == 0 {
                    break;
                }
                out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                out.extend_from_slice(&random_message(rng, budget, depth + 1));
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        }
        4 if *budget > 0 && depth < 60 => {
            out.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
            out.extend_from_slice(&random_message(rng, budget, depth + 1));
        }
        _ => {
            out.extend_from_slice(b"Content-Type: text/plain\r\n\r\n");
            for _ in 0..rng.random_range(0..5) {
                let line = match rng.random_range(0..6) {
                    0 => ".leading dot".to_owned(),
                    1 => "..".to_owned(),
                    _ => "text".repeat(rng.random_range(0..20)),
                };
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out
}

/// Dot-stuffs a message as a client sends it after DATA, with its end.
fn stuffed(message: &[u8]) -> Vec<u8> {
    crate::outbound::client::data_bytes(message)
}

/// The accept path, seeded and bounded: random MIME trees (deep and wide, up to thousands of
/// parts), sent as DATA with fake ends of data spliced in. Whatever arrives, DATA ends only at
/// a real CRLF "." CRLF (the message comes back exactly and nothing after it was eaten), and
/// the summary that would travel in the Raft entry is within its bounds, or the message is
/// refused and the fallback summary is one part.
#[tokio::test]
async fn the_accept_path_stays_in_step_and_bounded_on_random_hostile_messages() {
    use raft_store::summary::{MAX_SUMMARY_BYTES, MessageLimits, summarize, summarize_within};
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let (mut accepted, mut refused, mut cut) = (0, 0, 0);
    for round in 0..300 {
        let mut budget = if round % 10 == 0 { 5000 } else { 300 };
        let mut message = b"From: a@remote.test\r\nSubject: random\r\n".to_vec();
        message.extend(random_message(&mut rng, &mut budget, 0));
        let mut input = stuffed(&message);
        let after = b"QUIT\r\n";
        // Now and then a fake end of data inside the message.
        if round % 3 == 0 {
            let fakes: [&[u8]; 5] = [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\n"];
            let fake = fakes[rng.random_range(0..fakes.len())];
            let at = rng.random_range(0..input.len() - 3);
            input.splice(at..at, fake.iter().copied());
        }
        input.extend_from_slice(after);
        let (data, consumed) = crate::smtp::read_data(&input, 1 << 30).await;
        // DATA ends exactly at the first CRLF "." CRLF (a splice can make a real one), and the
        // command loop gets everything after it.
        let real_end = if input.starts_with(b".\r\n") {
            3
        } else {
            input
                .windows(5)
                .position(|w| w == b"\r\n.\r\n")
                .expect("the data has its end")
                + 5
        };
        assert_eq!(consumed, real_end, "round {round}");
        let Some(data) = data else {
            cut += 1;
            continue;
        };
        if consumed + after.len() == input.len() {
            assert_eq!(stuffed(&data), input[..consumed], "round {round}");
        }
        match summarize_within(&data, &MessageLimits::default()) {
            Ok(summary) => {
                accepted += 1;
                assert!(summary.within_ceiling(), "round {round}");
                assert!(raft_store::encoded_len(&summary) <= MAX_SUMMARY_BYTES);
            }
            Err(_) => {
                refused += 1;
                let fallback = summarize(&data);
                assert!(raft_store::encoded_len(&fallback) <= MAX_SUMMARY_BYTES);
            }
        }
    }
    eprintln!("{accepted} accepted, {refused} refused as too complex, {cut} refused at DATA");
    assert!(
        accepted > 50 && refused > 5 && cut > 50,
        "{accepted} {refused} {cut}"
    );
}

#[track_caller]
fn check_completed(message: &str, expected: &str) {
    let completed = complete_submission(
        message.as_bytes().to_vec(),
        "Sun, 22 Nov 2026 12:04:05 +0000",
        "<abc.Q1@mail.example.test>",
    );
    assert_eq!(String::from_utf8(completed).unwrap(), expected);
}

#[test]
fn submission_adds_the_date_and_message_id_a_client_left_out() {
    check_completed(
        "Subject: hi\r\n\r\nbody\r\n",
        "Date: Sun, 22 Nov 2026 12:04:05 +0000\r\nMessage-ID: <abc.Q1@mail.example.test>\r\n\
         Subject: hi\r\n\r\nbody\r\n",
    );
    // The client's own fields stay, in any case, and nothing is added twice.
    let whole = "DATE: Mon, 1 Jan 2024 00:00:00 +0000\r\nmessage-id: <x@y>\r\n\r\nbody\r\n";
    check_completed(whole, whole);
    check_completed(
        "Message-Id : <x@y>\r\n\r\nb\r\n",
        "Date: Sun, 22 Nov 2026 12:04:05 +0000\r\nMessage-Id : <x@y>\r\n\r\nb\r\n",
    );
    // A Date in the body, a folded line or a Resent-Date is not the message's Date.
    check_completed(
        "Subject: x\r\n Date: folded\r\nResent-Date: y\r\nMessage-ID: <m@h>\r\n\r\nDate: z\r\n",
        "Date: Sun, 22 Nov 2026 12:04:05 +0000\r\nSubject: x\r\n Date: folded\r\n\
         Resent-Date: y\r\nMessage-ID: <m@h>\r\n\r\nDate: z\r\n",
    );
}
