// The rate-limit registry's scripts (included by `main.rs` once per topology).

mod limits {
    use std::sync::Arc;

    use genesis_queue::RedisConn;
    use genesis_queue::limits::{Admission, RateLimits, ServiceLimits};
    use uuid::Uuid;

    async fn registry() -> RateLimits {
        let conn = RedisConn::connect(&super::redis_url()).await.expect("redis");
        RateLimits::new(conn, &format!("t{}:", Uuid::new_v4().simple()))
    }

    fn refused(a: &Admission) -> Option<(&str, u64)> {
        match a {
            Admission::Refused {
                limit,
                retry_after_ms,
            } => Some((limit.as_str(), *retry_after_ms)),
            Admission::Admitted(_) => None,
        }
    }

    #[tokio::test]
    async fn a_daily_cap_refuses_the_call_past_it_until_midnight_and_counts_per_tenant() {
        let r = registry().await;
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let caps = ServiceLimits {
            daily_global: Some(5),
            daily_per_tenant: Some(3),
            ..Default::default()
        };
        for _ in 0..3 {
            assert!(refused(&r.acquire("cse", a, &caps).await.expect("redis")).is_none());
        }
        let fourth = r.acquire("cse", a, &caps).await.expect("redis");
        let (limit, wait) = refused(&fourth).expect("refused");
        assert_eq!(limit, "daily_per_tenant");
        assert!(wait > 0 && wait <= 86_400_000, "until midnight: {wait}");
        // Another tenant has its own 3, but the platform's 5 run out after 2 of them.
        for _ in 0..2 {
            assert!(refused(&r.acquire("cse", b, &caps).await.expect("redis")).is_none());
        }
        let over = r.acquire("cse", b, &caps).await.expect("redis");
        assert_eq!(refused(&over).map(|x| x.0), Some("daily_global"));
        assert_eq!(r.used_today("cse", a).await.expect("redis"), (5, 3));
    }

    #[tokio::test]
    async fn a_call_that_never_reached_the_vendor_gives_its_place_back() {
        let r = registry().await;
        let a = Uuid::new_v4();
        let caps = ServiceLimits {
            daily_per_tenant: Some(1),
            ..Default::default()
        };
        let Admission::Admitted(first) = r.acquire("cse", a, &caps).await.expect("redis") else {
            panic!("admitted");
        };
        assert!(refused(&r.acquire("cse", a, &caps).await.expect("redis")).is_some());
        r.release(&first, true).await.expect("redis");
        assert!(refused(&r.acquire("cse", a, &caps).await.expect("redis")).is_none());
    }

    #[tokio::test]
    async fn concurrency_slots_admit_exactly_their_number_under_contention() {
        let r = Arc::new(registry().await);
        let caps = ServiceLimits {
            concurrent_global: Some(100),
            concurrent_per_tenant: Some(5),
            ..Default::default()
        };
        let tenants: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();
        let mut tasks = Vec::new();
        for i in 0..400 {
            let (r, t) = (r.clone(), tenants[i % 40]);
            tasks.push(tokio::spawn(async move { r.acquire("apify", t, &caps).await }));
        }
        let mut admitted = Vec::new();
        let mut by_limit = std::collections::BTreeMap::<String, usize>::new();
        for t in tasks {
            match t.await.expect("task").expect("redis") {
                Admission::Admitted(a) => admitted.push(a),
                Admission::Refused { limit, retry_after_ms } => {
                    assert!(retry_after_ms >= 1);
                    *by_limit.entry(limit).or_default() += 1;
                }
            }
        }
        // 40 tenants × 5 slots = 200 wanted; the platform has 100.
        assert_eq!(admitted.len(), 100, "{by_limit:?}");
        assert_eq!(by_limit.values().sum::<usize>(), 300);
        // A slot given back is taken by the next call.
        let t = tenants[0];
        r.release(&admitted.pop().expect("one"), false).await.expect("redis");
        let next = r.acquire("apify", Uuid::new_v4(), &caps).await.expect("redis");
        assert!(refused(&next).is_none());
        assert!(refused(&r.acquire("apify", t, &caps).await.expect("redis")).is_some());
    }

    #[tokio::test]
    async fn a_token_bucket_allows_a_seconds_burst_then_the_rate() {
        let r = registry().await;
        let a = Uuid::new_v4();
        // 120 a minute: one every 500 ms, two at once.
        let caps = ServiceLimits {
            rpm_per_tenant: Some(120),
            ..Default::default()
        };
        for _ in 0..2 {
            assert!(refused(&r.acquire("openai", a, &caps).await.expect("redis")).is_none());
        }
        let third = r.acquire("openai", a, &caps).await.expect("redis");
        let (limit, wait) = refused(&third).expect("refused");
        assert_eq!(limit, "rpm_per_tenant");
        assert!((1..=500).contains(&wait), "{wait}");
        tokio::time::sleep(std::time::Duration::from_millis(wait + 20)).await;
        assert!(refused(&r.acquire("openai", a, &caps).await.expect("redis")).is_none());
        // Another tenant is not slowed by the first.
        assert!(refused(&r.acquire("openai", Uuid::new_v4(), &caps).await.expect("redis")).is_none());
    }
}
