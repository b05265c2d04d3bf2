//! Clients: the provider applications connections are made through (add, list,
//! look up, remove), and the validation of a new one.

use super::*;

impl Manager {
    pub async fn add_client(&self, new: NewClient) -> Result<Client> {
        let client = self.validate_new_client(&new)?;
        let name = client.name.clone();
        if self.inner.store.client(&name).await.is_ok() {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                format!(
                    "A client named {:?} exists already: pick another name.",
                    client.name
                ),
            ));
        }
        self.inner
            .store
            .insert_client(&client, new.client_secret.as_ref())
            .await?;
        tracing::info!(client = %client.id, provider = %client.provider, "client added");
        self.emit(Event::ClientsChanged);
        Ok(client)
    }

    pub(super) fn validate_new_client(&self, new: &NewClient) -> Result<Client> {
        let name = new.name.trim();
        if name.is_empty()
            || name.chars().count() > limits::NAME
            || name.chars().any(char::is_control)
        {
            return Err(Error::invalid_input(format!(
                "A client name is 1 to {} printable characters.",
                limits::NAME
            )));
        }
        let client_id = new.client_id.trim();
        check_length("The client id", client_id, limits::CLIENT_ID)?;
        if client_id.is_empty() || client_id.chars().any(char::is_control) {
            return Err(Error::invalid_input(
                "The client id is empty or not printable.",
            ));
        }
        for (what, url) in [
            ("The authorize URL", &new.authorize_url),
            ("The token URL", &new.token_url),
            ("The auth URL", &new.auth_url),
            ("The API URL", &new.api_url),
            ("The device API URL", &new.device_api_url),
            ("The redirect URI", &new.redirect_uri),
        ] {
            if let Some(url) = url {
                check_length(what, url, limits::URL)?;
            }
        }
        if let Some(secret) = &new.client_secret {
            check_secret_length("The client secret", secret)?;
        }
        let has_custom =
            new.authorize_url.is_some() || new.token_url.is_some() || new.auth_url.is_some();
        let environment = new.environment.unwrap_or(if has_custom {
            Environment::Custom
        } else {
            Environment::Sandbox
        });
        let preset = presets::endpoints(new.provider, environment);
        let url =
            |given: &Option<String>| given.as_deref().map(presets::validate_endpoint).transpose();
        let mut options = ClientOptions::default();
        let endpoints = match new.provider {
            Provider::FlowAccount => {
                let authorize_url = url(&new.authorize_url)?
                    .or_else(|| preset.as_ref().and_then(|p| p.authorize_url.clone()))
                    .ok_or_else(|| {
                        Error::invalid_input(
                            "FlowAccount needs --authorize-url for a custom environment.",
                        )
                    })?;
                let token_url = url(&new.token_url)?
                    .or_else(|| preset.as_ref().map(|p| p.token_url.clone()))
                    .ok_or_else(|| {
                        Error::invalid_input(
                            "FlowAccount needs --token-url for a custom environment.",
                        )
                    })?;
                let redirect = new.redirect_uri.as_deref().unwrap_or(APP_REDIRECT_URI);
                options.redirect_uri =
                    Some(authorize::validate_redirect_uri(redirect)?.to_string());
                options.pkce = new.pkce;
                if new.client_secret.as_ref().is_none_or(|s| s.is_empty()) {
                    return Err(Error::invalid_input("FlowAccount clients are confidential: give the client secret (--client-secret-stdin)."));
                }
                let api_base_url = match url(&new.api_url)? {
                    Some(api) => Some(api),
                    None => presets::flowaccount_api_base(environment, &token_url),
                };
                Endpoints {
                    authorize_url: Some(authorize_url),
                    token_url,
                    logout_url: None,
                    api_base_url,
                }
            }
            Provider::Fedex => {
                let token_url = url(&new.token_url)?
                    .or_else(|| preset.as_ref().map(|p| p.token_url.clone()))
                    .ok_or_else(|| {
                        Error::invalid_input("FedEx needs --token-url for a custom environment.")
                    })?;
                if new.client_secret.as_ref().is_none_or(|s| s.is_empty()) {
                    return Err(Error::invalid_input(
                        "A FedEx project needs its secret key (--client-secret-stdin).",
                    ));
                }
                Endpoints {
                    authorize_url: None,
                    token_url,
                    logout_url: None,
                    api_base_url: None,
                }
            }
            Provider::Iot => {
                if new.client_secret.is_some() {
                    return Err(Error::invalid_input(
                        "The IoT platform uses no client secret: leave it out.",
                    ));
                }
                options.iot_basic_auth = new.iot_basic_auth;
                options.iot_body = new.iot_body;
                options.device_api_url = url(&new.device_api_url)?
                    .or_else(|| presets::device_api_url(new.provider, environment));
                match url(&new.auth_url)? {
                    Some(auth_url) => presets::iot_endpoints(&auth_url),
                    None => preset.ok_or_else(|| {
                        Error::invalid_input(
                            "The IoT platform has no sandbox preset: give --auth-url.",
                        )
                    })?,
                }
            }
        };
        if new.provider != Provider::FlowAccount && new.api_url.is_some() {
            return Err(Error::invalid_input(
                "--api-url applies to FlowAccount clients only.",
            ));
        }
        if new.provider != Provider::Iot && new.device_api_url.is_some() {
            return Err(Error::invalid_input(
                "--device-api-url applies to IoT-platform clients only.",
            ));
        }
        if new.provider != Provider::FlowAccount && (new.redirect_uri.is_some() || new.pkce) {
            return Err(Error::invalid_input(
                "--redirect-uri and --pkce apply to FlowAccount clients only.",
            ));
        }
        Ok(Client {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            provider: new.provider,
            environment,
            client_id: client_id.to_string(),
            endpoints,
            options,
            has_secret: new.client_secret.is_some(),
            created_at: self.now(),
            sandbox: new.sandbox,
        })
    }

    pub async fn clients(&self) -> Result<Vec<Client>> {
        self.inner.store.clients().await
    }

    pub async fn client(&self, reference: &str) -> Result<Client> {
        self.inner.store.client(reference).await
    }

    pub async fn remove_client(&self, reference: &str) -> Result<()> {
        let client = self.client(reference).await?;
        let n = self
            .inner
            .store
            .connection_count_for_client(&client.id)
            .await?;
        if n > 0 {
            return Err(Error::invalid_input(format!(
                "Client {:?} still has {n} connection(s): log out or disconnect them first.",
                client.name
            )));
        }
        let id = client.id.clone();
        let devices = self.db(move |db| db.device_count_for_client(&id)).await?;
        if devices > 0 {
            return Err(Error::invalid_input(format!(
                "Client {:?} still has {devices} device(s): remove them first (`authdeckctl device remove`).",
                client.name
            )));
        }
        self.inner.store.remove_client(&client).await?;
        self.emit(Event::ClientsChanged);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Validation and keyring-failure behaviour, with in-memory doubles. The provider
    //! round trips are tested against the emulator in `tests/manager_*.rs`.
    use super::*;
    use crate::store::db::Db;
    use crate::store::keyring::MemoryStore;

    fn manager(store: Arc<MemoryStore>) -> Manager {
        Manager::new(
            Db::open_in_memory().unwrap(),
            store,
            ManagerOptions::default(),
        )
        .unwrap()
    }

    fn fedex(name: &str, secret: Option<&str>) -> NewClient {
        let mut c = NewClient::new(name, Provider::Fedex, "key");
        c.client_secret = secret.map(ClientSecret::new);
        c
    }

    #[tokio::test]
    async fn presets_fill_endpoints_and_custom_urls_mean_custom() {
        let m = manager(Arc::new(MemoryStore::new()));
        let c = m.add_client(fedex("f", Some("s"))).await.unwrap();
        assert_eq!(c.environment, Environment::Sandbox);
        assert_eq!(
            c.endpoints.token_url.as_str(),
            "https://apis-sandbox.fedex.com/oauth/token"
        );
        let mut custom = fedex("g", Some("s"));
        custom.token_url = Some("http://127.0.0.1:9/oauth/token".into());
        assert_eq!(
            m.add_client(custom).await.unwrap().environment,
            Environment::Custom
        );
        let mut fa = NewClient::new("fa", Provider::FlowAccount, "id");
        fa.client_secret = Some(ClientSecret::new("s"));
        fa.environment = Some(Environment::Production);
        let fa = m.add_client(fa).await.unwrap();
        assert_eq!(
            fa.endpoints.authorize_url.unwrap().as_str(),
            "https://auth.flowaccount.com/connect/authorize"
        );
        assert_eq!(fa.options.redirect_uri.as_deref(), Some(APP_REDIRECT_URI));
    }

    #[tokio::test]
    async fn invalid_clients_are_rejected_and_nothing_is_stored() {
        let store = Arc::new(MemoryStore::new());
        let m = manager(store.clone());
        let mut plain_http = fedex("a", Some("s"));
        plain_http.token_url = Some("http://example.com/token".into());
        let mut iot_sandbox = NewClient::new("b", Provider::Iot, "id");
        iot_sandbox.environment = Some(Environment::Sandbox);
        let mut iot_secret = NewClient::new("c", Provider::Iot, "id");
        iot_secret.client_secret = Some(ClientSecret::new("s"));
        iot_secret.auth_url = Some("https://iot.example".into());
        let mut bad_redirect = NewClient::new("d", Provider::FlowAccount, "id");
        bad_redirect.client_secret = Some(ClientSecret::new("s"));
        bad_redirect.redirect_uri = Some("https://example.com/cb".into());
        for bad in [
            fedex("", Some("s")),
            fedex("x", None),
            plain_http,
            iot_sandbox,
            iot_secret,
            bad_redirect,
        ] {
            let err = m.add_client(bad).await.unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidInput, "{err:?}");
        }
        assert!(m.clients().await.unwrap().is_empty());
        assert!(store.keys().is_empty());
    }

    #[tokio::test]
    async fn over_long_inputs_are_invalid_input_and_change_nothing() {
        let store = Arc::new(MemoryStore::new());
        let m = manager(store.clone());
        let long = "x".repeat(70_000);
        let mut iot = NewClient::new("iot", Provider::Iot, "app");
        iot.auth_url = Some("https://iot.example".into());
        m.add_client(iot).await.unwrap();
        m.add_client(fedex("f", Some("s"))).await.unwrap();
        let keys = store.keys();

        let err = m
            .connect_iot("iot", &long, Password::new("pw"))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(err.message.contains("username is too long"), "{err:?}");
        let err = m
            .connect_iot("iot", "op", Password::new(long.clone()))
            .await
            .unwrap_err();
        assert!(err.message.contains("password is too long"), "{err:?}");
        assert!(!err.message.contains("xxxx"), "the secret is not shown");
        let err = m
            .connect_fedex(
                "f",
                FedexGrant::CspCredentials,
                Some((long.clone(), ChildSecret::new("s"))),
            )
            .await
            .unwrap_err();
        assert!(err.message.contains("child key is too long"), "{err:?}");
        let mut c = fedex("g", Some("s"));
        c.client_id = long.clone();
        assert_eq!(
            m.add_client(c).await.unwrap_err().code,
            ErrorCode::InvalidInput
        );
        let mut c = fedex("g", Some(&long));
        c.token_url = Some(format!("https://example.com/{long}"));
        assert_eq!(
            m.add_client(c).await.unwrap_err().code,
            ErrorCode::InvalidInput
        );

        assert_eq!(store.keys(), keys, "nothing reached the keyring");
        assert_eq!(m.clients().await.unwrap().len(), 2);
        assert!(m.history(None, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn keyring_unavailable_writes_nothing() {
        let store = Arc::new(MemoryStore::new());
        store.set_unavailable(true);
        let m = manager(store.clone());
        let err = m
            .add_client(fedex("f", Some("canary-secret")))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::KeyringUnavailable);
        assert!(
            m.clients().await.unwrap().is_empty(),
            "no client row without its secret"
        );
    }

    #[tokio::test]
    async fn duplicate_names_and_removal() {
        let store = Arc::new(MemoryStore::new());
        let m = manager(store.clone());
        m.add_client(fedex("f", Some("s"))).await.unwrap();
        assert_eq!(
            m.add_client(fedex("f", Some("t"))).await.unwrap_err().code,
            ErrorCode::AlreadyExists
        );
        assert_eq!(
            store.keys().len(),
            1,
            "the duplicate's secret was not written"
        );
        m.remove_client("f").await.unwrap();
        assert!(store.keys().is_empty());
        assert_eq!(
            m.remove_client("f").await.unwrap_err().code,
            ErrorCode::NotFound
        );
    }
}
