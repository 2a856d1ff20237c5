// The shared DigitalOcean budget's script (included by `main.rs` once per topology).

mod cloud_budget {
    use std::time::{Duration, Instant};

    use genesis_queue::RedisConn;
    use genesis_queue::cloud_budget::CloudBudget;

    const ROUTINE: u8 = 0;
    const NORMAL: u8 = 1;
    const URGENT: u8 = 2;

    /// One replica's handle on a token's budget (`prefix` names the test's keys), its hourly
    /// limit sixty windows' worth. (A far larger one would shape the hourly key with a
    /// burst of a few milliseconds, which a fast loop of calls runs into.)
    async fn replica(prefix: &str, per_minute: u32, window: Duration) -> CloudBudget {
        let conn = RedisConn::connect(&super::redis_url()).await.expect("redis");
        CloudBudget::new(
            conn,
            prefix,
            "9f86d081884c7d65",
            per_minute,
            per_minute * 60,
            window,
        )
    }

    fn prefix() -> String {
        format!("t{}:", uuid::Uuid::new_v4().simple())
    }

    /// Asks until refused; how many were admitted.
    async fn drain(b: &CloudBudget, priority: u8) -> usize {
        let mut n = 0;
        while b.admit(priority).await.expect("redis") == 0 {
            n += 1;
            assert!(n < 1000, "never refused");
        }
        n
    }

    #[tokio::test]
    async fn two_replicas_asking_flat_out_stay_together_under_one_tokens_limit() {
        let p = prefix();
        let window = Duration::from_millis(500);
        let (a, b) = (
            replica(&p, 100, window).await,
            replica(&p, 100, window).await,
        );
        let start = Instant::now();
        let run = |budget: CloudBudget| async move {
            let mut admitted = Vec::new();
            while start.elapsed() < window * 4 {
                match budget.admit(URGENT).await.expect("redis") {
                    0 => admitted.push(start.elapsed()),
                    wait => tokio::time::sleep(Duration::from_millis(wait)).await,
                }
            }
            admitted
        };
        let (x, y) = tokio::join!(run(a), run(b));
        assert!(x.len() > 20 && y.len() > 20, "both got a share: {} {}", x.len(), y.len());
        let mut all: Vec<Duration> = x.into_iter().chain(y).collect();
        all.sort_unstable();
        // No window, wherever it starts, holds more than the limit.
        for (i, t) in all.iter().enumerate() {
            let n = all[i..].iter().take_while(|u| **u < *t + window).count();
            assert!(n <= 100, "{n} requests in the window from {t:?}");
        }
        // And the budget was used, not starved: 4 windows at 85 a window, and a burst.
        assert!(all.len() >= 250, "{} admitted", all.len());
    }

    #[tokio::test]
    async fn routine_work_yields_to_normal_and_both_to_urgent_work() {
        // A real minute: nothing refills while the test runs.
        let b = replica(&prefix(), 100, Duration::from_secs(60)).await;
        // Routine work takes its share of the burst (4 of 40 a minute), then waits...
        let routine = drain(&b, ROUTINE).await;
        assert!((1..=4).contains(&routine), "{routine}");
        // ... while normal work still goes, up to its own share...
        let normal = drain(&b, NORMAL).await;
        assert!(normal >= 1, "{normal}");
        // ... and urgent work goes after both have had theirs. (Each refusal may come
        // within a millisecond of the next opening: the script rounds its times up, so
        // this checks what each got, not that the next ask is refused.)
        let urgent = drain(&b, URGENT).await;
        assert!(urgent >= 1, "{urgent}");
        assert!(routine + normal + urgent <= 10, "the whole burst at most");
    }

    #[tokio::test]
    async fn routine_work_alone_never_takes_more_than_two_fifths_of_the_rate() {
        let b = replica(&prefix(), 100, Duration::from_millis(400)).await;
        let start = Instant::now();
        let mut admitted = 0;
        while start.elapsed() < Duration::from_millis(1200) {
            match b.admit(ROUTINE).await.expect("redis") {
                0 => admitted += 1,
                wait => tokio::time::sleep(Duration::from_millis(wait)).await,
            }
        }
        // 3 windows at 40 a window at most (34 sustained and a burst of 4, in fact).
        assert!(admitted <= 120, "{admitted}");
        assert!(admitted >= 60, "{admitted}");
        // Meanwhile urgent work was never held back.
        assert_eq!(b.admit(URGENT).await.expect("redis"), 0);
    }
}
