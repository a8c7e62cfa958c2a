//! Outbox rows → the person's open sockets.
//!
//! A `Replies` row is pushed to every socket open for the person's session
//! and is then done; with none open it is done at once: the row stays in
//! the store, and the page replays it from its cursor when it connects
//! (see the module docs of [`super`]).
//!
//! Agent-side rows of web conversations (handoff card, relayed messages,
//! notes, transcript) go to the agents' channel (`web.agents`): handed to
//! that channel's own [`Deliver`] (Teams: the card in the agents' channel
//! and its reply thread), which works from the ticket alone. Without one
//! they are marked failed with the setting to fix.

use std::sync::Arc;

use async_trait::async_trait;

use super::{socket::reply_message, WebContext, CHANNEL};
use crate::outbox::{Deliver, DeliveryError, OutboxItem, OutboxRow};

pub struct WebDeliver {
    pub ctx: Arc<WebContext>,
    /// Delivers the agent-side rows (the agents' channel), if configured.
    pub agents: Option<Arc<dyn Deliver>>,
}

#[async_trait]
impl Deliver for WebDeliver {
    fn channel(&self) -> &str {
        CHANNEL
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        match &item.row {
            OutboxRow::Replies { replies } => {
                let session = self
                    .ctx
                    .desk
                    .person_address(&item.conversation_id)
                    .await
                    .map_err(DeliveryError::retry)?
                    .ok_or_else(|| {
                        DeliveryError::Permanent("web conversation without a session".into())
                    })?;
                let sockets = self
                    .ctx
                    .hub
                    .push(&session, &reply_message(item.id, replies));
                tracing::debug!(row = item.id, sockets, "web: reply pushed");
                Ok(())
            }
            other => match &self.agents {
                Some(agents) => agents.deliver(item).await,
                None => Err(DeliveryError::Permanent(format!(
                    "web: no agents' channel for web conversations ({} row not delivered); set web.agents = \"teams\" with Teams configured",
                    other.kind()
                ))),
            },
        }
    }
}
