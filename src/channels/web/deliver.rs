//! Outbox rows → the person's open sockets.
//!
//! A `Replies` row is pushed to every socket open for the person's session
//! and is then done; with none open it is done at once: the row stays in
//! the store, and the page replays it from its cursor when it connects
//! (see the module docs of [`super`]).
//!
//! With several instances on one PostgreSQL the person's socket may be on
//! another instance: after pushing, the deliverer announces the session
//! ([`super::WEB_TOPIC`]); every instance listening (`serve` starts the
//! listener) tells that session's sockets to send what they have not sent
//! ([`super::Hub::catch_up`]). A listener that lost its connection tells
//! every socket to catch up.
//!
//! Agent-side rows of web conversations (handoff card or thread, relayed
//! messages, notes, transcript) are not the page's: `serve` wraps this
//! deliverer so they go to the agents' side of `desk.agents` (the Teams
//! or Discord deliverer, which work from the ticket alone; see
//! [`crate::serve`]). Reaching this deliverer, such a row is marked failed
//! with the setting to fix.

use std::sync::Arc;

use async_trait::async_trait;

use super::{socket::reply_message, WebContext, CHANNEL};
use crate::outbox::{Deliver, DeliveryError, OutboxItem, OutboxRow};

pub struct WebDeliver {
    pub ctx: Arc<WebContext>,
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
                // The person's page may be open on another instance (several
                // on one PostgreSQL): it sends the row from there at once.
                // Not an error for the row: that page also replays it when
                // it reconnects.
                if let Err(e) = self.ctx.desk.announce(super::WEB_TOPIC, &session).await {
                    tracing::warn!(row = item.id, error = %e, "web: could not tell the other instances about a reply (a page open there shows it when it reconnects)");
                }
                Ok(())
            }
            other => Err(DeliveryError::Permanent(format!(
                "web: no agents' side for web conversations ({} row not delivered); set desk.agents to \"teams\" or \"discord\" with that channel on",
                other.kind()
            ))),
        }
    }
}
