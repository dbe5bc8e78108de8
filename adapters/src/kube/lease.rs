//! (being written by the lease helper; placeholder API)
#[derive(Clone)]
pub struct Leadership(tokio::sync::watch::Receiver<bool>);
impl Leadership {
    pub fn is_leader(&self) -> bool {
        *self.0.borrow()
    }
    pub fn changes(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.clone()
    }
    pub fn manual(initial: bool) -> (Leadership, tokio::sync::watch::Sender<bool>) {
        let (tx, rx) = tokio::sync::watch::channel(initial);
        (Leadership(rx), tx)
    }
}
impl Leadership {
    pub fn always() -> Leadership {
        Self::manual(true).0
    }
}
pub const DEFAULT_LEASE_NAME: &str = "meshplane-leader";
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
}
impl LeaseConfig {
    pub fn new(namespace: String, name: String, identity: String) -> Self {
        LeaseConfig {
            namespace,
            name,
            identity,
        }
    }
}
pub fn spawn(
    _client: kube::Client,
    _config: LeaseConfig,
) -> (Leadership, tokio::task::JoinHandle<()>) {
    (Leadership::always(), tokio::task::spawn_local(async {}))
}
