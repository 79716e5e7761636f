//! MX routing (`node::outbound::route`) against the DNS stub: preference order, the implicit
//! MX, null MX, a domain that does not exist, and a resolver that cannot answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chaos_tests::outbound_lab::{DnsStub, Zone};
use node::outbound::route::{RouteError, Router, Target};

fn v4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, d))
}

#[test]
fn mx_routing_follows_preferences_and_tells_permanent_from_temporary_failures() {
    let zone = Zone::new()
        // Listed out of order: the router sorts by preference.
        .mx("multi.test", 20, "mx2.multi.test")
        .mx("multi.test", 10, "mx1.multi.test")
        .mx("multi.test", 30, "noaddress.multi.test")
        .a("mx1.multi.test", Ipv4Addr::new(127, 0, 0, 2))
        .a("mx2.multi.test", Ipv4Addr::new(127, 0, 0, 3))
        .aaaa("mx2.multi.test", Ipv6Addr::LOCALHOST)
        .a("plain.test", Ipv4Addr::new(127, 0, 0, 4))
        .mx("nullmx.test", 0, ".")
        .mx("dangling.test", 10, "gone.dangling.test")
        .servfail("broken.test");
    let stub = DnsStub::start(v4(1), 0, &zone).expect("start the DNS stub");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let router = Router::new(&[stub.addr()]).expect("router");

        let targets = router
            .targets("multi.test")
            .await
            .expect("multi.test routes");
        let hosts: Vec<(&str, u16)> = targets
            .iter()
            .map(|t| (t.host.as_str(), t.preference))
            .collect();
        // The host without an address is skipped; the others come best first.
        assert_eq!(hosts, [("mx1.multi.test", 10), ("mx2.multi.test", 20)]);
        assert_eq!(targets[0].addresses, [v4(2)]);
        let mut second = targets[1].addresses.clone();
        second.sort();
        assert_eq!(second, [v4(3), IpAddr::V6(Ipv6Addr::LOCALHOST)]);

        // No MX: the domain is its own mail host. A trailing dot changes nothing.
        assert_eq!(
            router.targets("plain.test.").await.expect("implicit MX"),
            [Target {
                host: "plain.test".into(),
                preference: 0,
                addresses: vec![v4(4)],
            }]
        );

        let permanent = |result: Result<Vec<Target>, RouteError>| match result {
            Err(RouteError::Permanent { status, .. }) => status,
            other => panic!("expected a permanent failure, got {other:?}"),
        };
        let temporary = |result: Result<Vec<Target>, RouteError>| match result {
            Err(RouteError::Temporary { status, .. }) => status,
            other => panic!("expected a temporary failure, got {other:?}"),
        };
        assert_eq!(permanent(router.targets("nullmx.test").await), "5.1.10");
        assert_eq!(
            permanent(router.targets("nosuchdomain.test").await),
            "5.1.2"
        );
        // An MX host without an address may get one: try again later.
        assert_eq!(temporary(router.targets("dangling.test").await), "4.4.4");
        assert_eq!(temporary(router.targets("broken.test").await), "4.4.3");
    });
}
