//! Sessions reused per tenant: a few live instances each (calls of one tenant run in
//! parallel up to that, tenants independently), created on first use and kept warm.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use provider_runtime::{HostConfig, HostError, Runtime, Session};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Live sessions per tenant; more concurrent requests of one tenant wait for a free one.
pub const SESSIONS_PER_TENANT: usize = 8;

struct TenantPool {
    idle: Mutex<Vec<Session>>,
    slots: Arc<Semaphore>,
}

/// Every tenant's sessions.
pub struct Sessions {
    runtime: Runtime,
    config: HostConfig,
    tenants: Mutex<HashMap<String, Arc<TenantPool>>>,
}

/// A session lent to one request; back to its tenant's pool when dropped.
pub struct Lease {
    session: Option<Session>,
    pool: Arc<TenantPool>,
    _slot: OwnedSemaphorePermit,
}

impl Lease {
    pub fn session(&mut self) -> &mut Session {
        self.session.as_mut().expect("leased session")
    }

    /// Throw the session away instead of returning it: a call of it was abandoned midway
    /// (the client went away), so its instance may be in any state.
    pub fn discard(mut self) {
        self.session = None;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(s);
        }
    }
}

impl Sessions {
    pub fn new(runtime: Runtime, config: HostConfig) -> Self {
        Self {
            runtime,
            config,
            tenants: Mutex::default(),
        }
    }

    /// A session of `tenant`, waiting while all of its sessions are busy.
    pub async fn lease(&self, tenant: &str) -> Result<Lease, HostError> {
        let pool = self
            .tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(tenant.to_owned())
            .or_insert_with(|| {
                Arc::new(TenantPool {
                    idle: Mutex::default(),
                    slots: Arc::new(Semaphore::new(SESSIONS_PER_TENANT)),
                })
            })
            .clone();
        let slot = pool
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let idle = pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let session = match idle {
            Some(s) => s,
            None => self.runtime.session(tenant, &self.config).await?,
        };
        Ok(Lease {
            session: Some(session),
            pool,
            _slot: slot,
        })
    }
}
