//! A simulator served over real HTTP with every `/v2` request and response checked against
//! DigitalOcean's OpenAPI description, and a client tuned for fast tests.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::sync::Arc;
use std::time::Duration;

use genesis_cloud::{ClientOptions, Cloud, CreateDroplet, DigitalOcean, Droplet};
use genesis_sim::contract::{Contract, ContractLog, checked};
use genesis_sim::digitalocean::{Faults, SimConfig, Simulator, Stats, serve_with};

/// A running simulator.
pub struct Harness {
    pub base: String,
    pub sim: Simulator,
    pub contract: Arc<ContractLog>,
}

impl Harness {
    pub async fn start(cfg: SimConfig) -> Self {
        Self::serve(Simulator::new(cfg)).await
    }

    pub async fn serve(sim: Simulator) -> Self {
        let contract = ContractLog::new(Contract::digitalocean().expect("contract"), "/v2/");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let log = contract.clone();
        tokio::spawn(serve_with(
            listener,
            sim.clone(),
            move |r| checked(r, log),
            std::future::pending(),
        ));
        Self {
            base: format!("http://{addr}"),
            sim,
            contract,
        }
    }

    pub fn client(&self) -> DigitalOcean {
        let mut o = ClientOptions::new(&self.base, "test-token");
        o.per_minute = 100_000;
        o.per_hour = 10_000_000;
        o.poll_interval = Duration::from_millis(5);
        o.min_backoff = Duration::from_millis(5);
        o.max_attempts = 10;
        DigitalOcean::new(o).expect("client")
    }

    pub async fn stats(&self) -> Stats {
        reqwest::get(format!("{}/sim/v1/stats", self.base))
            .await
            .expect("stats")
            .json()
            .await
            .expect("json")
    }

    pub async fn set_faults(&self, f: &Faults) {
        let r = reqwest::Client::new()
            .put(format!("{}/sim/v1/faults", self.base))
            .json(f)
            .send()
            .await
            .expect("faults");
        assert!(r.status().is_success(), "faults accepted");
    }

    /// Every message so far honoured the OpenAPI description.
    pub fn assert_contract_kept(&self) {
        let v = self.contract.violations();
        assert!(v.is_empty(), "contract violations: {v:#?}");
        assert!(self.contract.checked() > 0, "traffic was checked");
    }
}

/// Creates a droplet and waits until its create action completes.
pub async fn create_active(c: &DigitalOcean, req: &CreateDroplet) -> Droplet {
    let (d, action) = c.droplet_create(req).await.expect("create");
    c.action_wait(action.expect("create action").id, Duration::from_secs(5))
        .await
        .expect("create completes");
    d
}

pub fn create_req(name: &str, ws: &str) -> CreateDroplet {
    CreateDroplet {
        name: name.into(),
        region: "fra1".into(),
        size: "s-1vcpu-1gb".into(),
        image: "ubuntu-22-04-x64".into(),
        user_data: Some("#cloud-config\n".into()),
        tags: vec![format!("ws-{ws}")],
        ssh_keys: vec![],
        vpc_uuid: None,
    }
}
