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
