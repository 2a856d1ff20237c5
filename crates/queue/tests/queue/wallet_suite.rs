// The wallet's Redis scripts (included by `main.rs` once per topology).

mod wallet {
    use std::sync::Arc;

    use genesis_queue::RedisConn;
    use genesis_queue::wallet::{Reserve, Settle, WalletCache};
    use uuid::Uuid;

    async fn cache() -> WalletCache {
        let conn = RedisConn::connect(&super::redis_url()).await.expect("redis");
        WalletCache::new(conn, &format!("t{}:", Uuid::new_v4().simple()))
    }

    #[tokio::test]
    async fn reserves_settles_and_journals_what_it_did() {
        let c = cache().await;
        let ws = Uuid::new_v4();
        let hold = Uuid::now_v7();
        assert_eq!(
            c.reserve(ws, hold, 300, 60, "EMAIL_VERIFY", "r").await.expect("redis"),
            Reserve::NotLoaded
        );
        assert!(c.load(ws, 1_000, 7, false, 0).await.expect("load"));
        assert!(!c.load(ws, 99_999, 7, false, 0).await.expect("load"), "loaded once");
        assert_eq!(
            c.reserve(ws, hold, 600, 60, "APIFY_SCRAPE", "r").await.expect("redis"),
            Reserve::Reserved(400)
        );
        assert_eq!(
            c.reserve(ws, hold, 600, 60, "APIFY_SCRAPE", "r").await.expect("redis"),
            Reserve::AlreadyHeld(400),
            "a retried reservation is not taken twice"
        );
        let other = Uuid::now_v7();
        assert_eq!(
            c.reserve(ws, other, 401, 60, "APIFY_SCRAPE", "r").await.expect("redis"),
            Reserve::Short(400)
        );
        let post = Uuid::now_v7();
        assert_eq!(c.post(ws, hold, post, 601).await.expect("redis"), Settle::MoreThanHeld(600));
        assert_eq!(c.post(ws, hold, post, 500).await.expect("redis"), Settle::Done(500));
        assert_eq!(c.post(ws, hold, post, 500).await.expect("redis"), Settle::NoHold);
        // A credit the wallet was loaded with is not counted twice; a later one is.
        assert_eq!(c.credit(ws, 1_000, 7, false).await.expect("redis"), Some(500));
        assert_eq!(c.credit(ws, 1_000, 8, false).await.expect("redis"), Some(1_500));
        let snap = c.snapshot(ws, 100).await.expect("redis").expect("cached");
        assert_eq!((snap.avail, snap.seq, snap.holds, snap.journal_len), (1_500, 2, 0, 2));
        assert_eq!(snap.journal[0].op, "R");
        assert_eq!(snap.journal[0].amount, 600);
        assert_eq!(snap.journal[1].op, "P");
        assert_eq!((snap.journal[1].amount, snap.journal[1].held), (500, Some(600)));
        assert_eq!(snap.journal.iter().map(|e| e.effect()).sum::<i64>(), -500);
        assert_eq!(c.take_dirty(10).await.expect("redis"), vec![ws]);
        assert_eq!(c.ack(ws, 1).await.expect("redis"), 1);
        assert_eq!(c.ack(ws, 2).await.expect("redis"), 0);
        // The kill-switch refuses every reservation until lifted.
        c.set_halted(ws, true).await.expect("redis");
        assert_eq!(
            c.reserve(ws, Uuid::now_v7(), 1, 60, "CSE_SEARCH", "r").await.expect("redis"),
            Reserve::Halted(1_500)
        );
        c.credit(ws, 0, 0, true).await.expect("redis");
        assert!(matches!(
            c.reserve(ws, Uuid::now_v7(), 1, 60, "CSE_SEARCH", "r").await.expect("redis"),
            Reserve::Reserved(1_499)
        ));
        // A hold the ledger expired gives its money back once, without a journal entry.
        let h = Uuid::now_v7();
        c.reserve(ws, h, 99, 60, "CSE_SEARCH", "r").await.expect("redis");
        let before = c.snapshot(ws, 100).await.expect("redis").expect("cached");
        assert!(c.drop_hold(ws, h).await.expect("redis"));
        assert!(!c.drop_hold(ws, h).await.expect("redis"));
        let after = c.snapshot(ws, 100).await.expect("redis").expect("cached");
        assert_eq!((after.avail, after.seq), (before.avail + 99, before.seq));
        // A rebuild only lands on the picture it was computed from.
        assert!(!c.rebuild(ws, after.seq - 1, 0).await.expect("redis"));
        assert!(c.rebuild(ws, after.seq, 42).await.expect("redis"));
    }

    #[tokio::test]
    async fn a_thousand_concurrent_reservations_never_go_below_zero() {
        let c = Arc::new(cache().await);
        let ws = Uuid::new_v4();
        c.load(ws, 100_000, 0, false, 0).await.expect("load");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..1_000 {
            let c = c.clone();
            tasks.spawn(async move {
                c.reserve(ws, Uuid::now_v7(), 300, 60, "EMAIL_VERIFY", "r").await
            });
        }
        let (mut ok, mut short) = (0, 0);
        while let Some(r) = tasks.join_next().await {
            match r.expect("task").expect("redis") {
                Reserve::Reserved(left) => {
                    assert!(left >= 0);
                    ok += 1;
                }
                Reserve::Short(_) => short += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((ok, short), (333, 667));
        let snap = c.snapshot(ws, 2_000).await.expect("redis").expect("cached");
        assert_eq!((snap.avail, snap.holds, snap.journal_len), (100, 333, 333));
    }

    #[tokio::test]
    async fn only_a_journals_first_entry_marks_its_wallet_and_an_ack_says_what_is_left() {
        let c = cache().await;
        let ws = Uuid::new_v4();
        c.load(ws, 10_000, 0, false, 40).await.expect("load");
        let reserve = || c.reserve(ws, Uuid::now_v7(), 100, 60, "CSE_SEARCH", "r");
        for _ in 0..3 {
            assert!(matches!(reserve().await.expect("redis"), Reserve::Reserved(_)));
        }
        assert_eq!(c.take_dirty(10).await.expect("redis"), vec![ws]);
        // Entries written while the syncer works mark nothing of their own…
        for _ in 0..3 {
            reserve().await.expect("redis");
        }
        assert!(c.take_dirty(10).await.expect("redis").is_empty());
        // …and the syncer's ack tells it they are there.
        assert_eq!(c.ack(ws, 43).await.expect("redis"), 3);
        let snap = c.snapshot(ws, 100).await.expect("redis").expect("cached");
        assert_eq!(
            snap.journal.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![44, 45, 46]
        );
        assert_eq!(c.ack(ws, 43).await.expect("redis"), 3, "an ack again drops nothing");
        assert_eq!(c.ack(ws, 99).await.expect("redis"), 0);
        // A journal that starts anew marks its wallet again.
        reserve().await.expect("redis");
        assert_eq!(c.take_dirty(10).await.expect("redis"), vec![ws]);
    }
}
