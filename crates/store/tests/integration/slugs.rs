//! Slugs are global across regional databases: two regions creating one slug at the same
//! moment (the API checked, then created, and both passed the check) end with one workspace.

use genesis_core::{Region, WorkspaceId};
use genesis_store::{StoreError, testing};

use super::helpers::new_workspace;

#[tokio::test]
async fn two_regions_racing_for_one_slug_get_one_workspace() {
    let (home, eu, stores) = testing::two_regions().await.expect("dbs");
    for round in 0..20 {
        let mut a = new_workspace("race");
        a.region = Region::EuWest;
        let mut b = a.clone();
        b.id = WorkspaceId::new();
        b.region = Region::UsWest;
        let (ra, rb) = tokio::join!(
            stores.workspace_create_unique(&a, "test"),
            stores.workspace_create_unique(&b, "test"),
        );
        let won = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {ra:?} / {rb:?}");
        let lost = if ra.is_err() { ra } else { rb };
        assert!(
            matches!(lost, Err(StoreError::Conflict { field: "slug", .. })),
            "{lost:?}"
        );
    }
    // A workspace that cannot be created gives its slug back.
    let mut bad = new_workspace("released");
    bad.region = Region::EuWest;
    let first = stores
        .workspace_create_unique(&bad, "test")
        .await
        .expect("created");
    let mut again = bad.clone();
    again.slug = genesis_core::Slug::parse("released_twin").expect("slug");
    again.id = first.id; // same id: the insert fails on the primary key
    assert!(
        stores
            .workspace_create_unique(&again, "test")
            .await
            .is_err()
    );
    let mut fresh = new_workspace("x");
    fresh.slug = again.slug.clone();
    fresh.region = Region::UsEast;
    stores
        .workspace_create_unique(&fresh, "test")
        .await
        .expect("the released slug is free again");
    home.cleanup().await.expect("cleanup");
    eu.cleanup().await.expect("cleanup");
}
