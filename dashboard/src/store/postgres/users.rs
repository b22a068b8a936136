//! API tokens (their hashes), analysts and sessions.

use super::{PgStore, clean};
use crate::auth::Scope;
use crate::store::model::*;
use crate::store::traits::{TokenStore, UserStore};

impl TokenStore for PgStore {
    fn token_insert(
        &self,
        name: &str,
        scope: Scope,
        hash: &str,
        sensors: Option<&[String]>,
        expires: Option<i64>,
        now: i64,
    ) -> StoreResult<i64> {
        let sensors = sensors.map(serde_json::to_string).transpose()?;
        let name = clean(name);
        self.write(async |tx| {
            Ok(tx
                .query_one(
                    "INSERT INTO tokens (name, scope, hash, created, sensors, expires)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[
                        &name.as_ref(),
                        &scope.as_str(),
                        &hash,
                        &now,
                        &sensors,
                        &expires,
                    ],
                )
                .await?
                .get(0))
        })
    }

    fn token_lookup(&self, hash: &str, now: i64) -> StoreResult<Option<TokenGrant>> {
        let hash = clean(hash);
        self.run(async {
            let c = self.conn().await?;
            let Some(r) = c
                .query_opt(
                    "SELECT id, scope, sensors FROM tokens WHERE hash = $1 AND revoked IS NULL
                     AND (expires IS NULL OR expires > $2)",
                    &[&hash.as_ref(), &now],
                )
                .await?
            else {
                return Ok(None);
            };
            let Ok(scope) = r.get::<_, String>(1).parse() else {
                return Ok(None);
            };
            Ok(Some(TokenGrant {
                id: r.get(0),
                scope,
                sensors: r
                    .get::<_, Option<String>>(2)
                    .map(|s| serde_json::from_str(&s))
                    .transpose()?,
            }))
        })
    }

    fn token_list(&self) -> StoreResult<Vec<TokenRow>> {
        self.run(async {
            let c = self.conn().await?;
            let mut out = Vec::new();
            for r in c
                .query(
                    "SELECT id, name, scope, created, revoked, sensors FROM tokens ORDER BY id",
                    &[],
                )
                .await?
            {
                if let Ok(scope) = r.get::<_, String>(2).parse() {
                    out.push(TokenRow {
                        id: r.get(0),
                        name: r.get(1),
                        scope,
                        created: r.get(3),
                        revoked: r.get(4),
                        sensors: r
                            .get::<_, Option<String>>(5)
                            .map(|s| serde_json::from_str(&s))
                            .transpose()?,
                    });
                }
            }
            Ok(out)
        })
    }

    fn token_revoke(&self, id: i64, now: i64) -> StoreResult<bool> {
        self.write(async |tx| {
            Ok(tx
                .execute(
                    "UPDATE tokens SET revoked = $2 WHERE id = $1 AND revoked IS NULL",
                    &[&id, &now],
                )
                .await?
                > 0)
        })
    }
}

impl UserStore for PgStore {
    fn user_upsert(&self, name: &str, phc: &str, now: i64) -> StoreResult<()> {
        let name = clean(name);
        self.write(async |tx| {
            tx.execute(
                "INSERT INTO users (name, phc, created) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET phc = excluded.phc",
                &[&name.as_ref(), &phc, &now],
            )
            .await?;
            // A new password ends the user's sessions.
            tx.execute(
                "DELETE FROM sessions WHERE user_name = $1",
                &[&name.as_ref()],
            )
            .await?;
            Ok(())
        })
    }

    fn user_phc(&self, name: &str) -> StoreResult<Option<String>> {
        let name = clean(name);
        self.run(async {
            let c = self.conn().await?;
            Ok(
                c.query_opt("SELECT phc FROM users WHERE name = $1", &[&name.as_ref()])
                    .await?
                    .map(|r| r.get(0)),
            )
        })
    }

    fn session_insert(
        &self,
        hash: &str,
        user: &str,
        csrf: &str,
        expires: i64,
        now: i64,
    ) -> StoreResult<()> {
        let user = clean(user);
        self.write(async |tx| {
            tx.execute(
                "INSERT INTO sessions (hash, user_name, csrf, expires, last_seen)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&hash, &user.as_ref(), &csrf, &expires, &now],
            )
            .await?;
            Ok(())
        })
    }

    fn session_lookup(&self, hash: &str, now: i64) -> StoreResult<Option<Session>> {
        let hash = clean(hash);
        self.run(async {
            let c = self.conn().await?;
            Ok(c.query_opt(
                "SELECT user_name, csrf, expires, last_seen FROM sessions
                 WHERE hash = $1 AND expires > $2",
                &[&hash.as_ref(), &now],
            )
            .await?
            .map(|r| Session {
                user: r.get(0),
                csrf: r.get(1),
                expires: r.get(2),
                last_seen: r.get(3),
            }))
        })
    }

    fn session_delete(&self, hash: &str) -> StoreResult<()> {
        let hash = clean(hash);
        self.write(async |tx| {
            tx.execute("DELETE FROM sessions WHERE hash = $1", &[&hash.as_ref()])
                .await?;
            Ok(())
        })
    }

    fn session_touch(&self, hash: &str, now: i64) -> StoreResult<()> {
        let hash = clean(hash);
        self.write(async |tx| {
            tx.execute(
                "UPDATE sessions SET last_seen = $2 WHERE hash = $1 AND last_seen < $2",
                &[&hash.as_ref(), &now],
            )
            .await?;
            Ok(())
        })
    }

    fn user_set_mfa(
        &self,
        name: &str,
        totp_secret: Option<&str>,
        recovery: &[String],
    ) -> StoreResult<bool> {
        let recovery = serde_json::to_string(recovery)?;
        let name = clean(name);
        self.write(async |tx| {
            let n = tx
                .execute(
                    "UPDATE users SET totp_secret = $2, recovery = $3, totp_last_step = 0
                     WHERE name = $1",
                    &[&name.as_ref(), &totp_secret, &recovery],
                )
                .await?;
            Ok(n == 1)
        })
    }

    fn user_mfa(&self, name: &str) -> StoreResult<Option<UserMfa>> {
        let name = clean(name);
        let row: Option<(Option<String>, Option<String>)> = self.run(async {
            let c = self.conn().await?;
            Ok(c.query_opt(
                "SELECT totp_secret, recovery FROM users WHERE name = $1",
                &[&name.as_ref()],
            )
            .await?
            .map(|r| (r.get(0), r.get(1))))
        })?;
        row.map(|(totp_secret, recovery)| {
            Ok(UserMfa {
                totp_secret,
                recovery: recovery
                    .map(|r| serde_json::from_str(&r))
                    .transpose()?
                    .unwrap_or_default(),
            })
        })
        .transpose()
    }

    fn user_use_recovery(&self, name: &str, hash: &str) -> StoreResult<bool> {
        let name = clean(name);
        self.write(async |tx| {
            // Locked: two sign-ins with one code cannot both use it.
            let codes: Option<String> = tx
                .query_opt(
                    "SELECT recovery FROM users WHERE name = $1 FOR UPDATE",
                    &[&name.as_ref()],
                )
                .await?
                .and_then(|r| r.get(0));
            let mut codes: Vec<String> = codes
                .map(|c| serde_json::from_str(&c))
                .transpose()?
                .unwrap_or_default();
            let Some(at) = codes
                .iter()
                .position(|c| crate::auth::constant_time_eq(c, hash))
            else {
                return Ok(false);
            };
            codes.remove(at);
            tx.execute(
                "UPDATE users SET recovery = $2 WHERE name = $1",
                &[&name.as_ref(), &serde_json::to_string(&codes)?],
            )
            .await?;
            Ok(true)
        })
    }

    fn user_use_totp_step(&self, name: &str, step: i64) -> StoreResult<bool> {
        let name = clean(name);
        self.write(async |tx| {
            // The row lock makes a second update wait for the first and
            // then see its step: one code, one sign-in, across replicas.
            let n = tx
                .execute(
                    "UPDATE users SET totp_last_step = $2 \
                     WHERE name = $1 AND totp_last_step < $2",
                    &[&name.as_ref(), &step],
                )
                .await?;
            Ok(n == 1)
        })
    }
}
