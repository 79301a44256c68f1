//! Loading and validation, layer by layer.

use super::*;

#[test]
fn defaults_are_valid() {
    let mut c = Config::default();
    c.finish().unwrap();
    assert!(c.store.url.ends_with("switchboard.db"));
    assert_eq!(c.listen.port(), 3000);
}

#[test]
fn file_env_and_flags_layer_in_order() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "switchboard.toml",
            r#"
            listen = "127.0.0.1:4000"
            [limits]
            max_message_bytes = 2048
            [heartbeat]
            interval_ms = 1000
            timeout_ms = 3000
            "#,
        )?;
        jail.set_env("SWITCHBOARD_LIMITS__MAX_MESSAGE_BYTES", "4096");
        jail.set_env("SWITCHBOARD_AUTH__JWT_SECRET", "a-secret-of-enough-length");
        let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
        assert_eq!(c.listen.port(), 4000);
        assert_eq!(c.limits.max_message_bytes, 4096);
        assert_eq!(c.heartbeat.interval_ms, 1000);
        assert_eq!(c.auth.jwt_secret, "a-secret-of-enough-length");
        jail.set_env("SWITCHBOARD_LISTEN", "127.0.0.1:5000");
        let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
        assert_eq!(c.listen.port(), 5000);
        let flags = Overrides {
            listen: Some("127.0.0.1:6000".parse().unwrap()),
            data_dir: None,
        };
        let c = Config::load(None, &flags).map_err(|e| e.to_string())?;
        assert_eq!(c.listen.port(), 6000);
        Ok(())
    });
}

#[test]
fn bad_values_name_the_key() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("SWITCHBOARD_LISTEN", "not-an-address");
        let e = Config::load(None, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.to_lowercase().contains("listen"), "{e}");
        jail.clear_env();
        jail.set_env("SWITCHBOARD_HEARTBEAT__TIMEOUT_MS", "10");
        let e = Config::load(None, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("heartbeat.timeout_ms"), "{e}");
        jail.clear_env();
        jail.set_env("SWITCHBOARD_LIMITS__MAX_MESSAGE_BYTES", "lots");
        let e = Config::load(None, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.to_lowercase().contains("max_message_bytes"), "{e}");
        jail.clear_env();
        jail.create_file("bad.toml", "[broker]\nurl = \"kafka://x\"\n")?;
        let e = Config::load(Some(Path::new("bad.toml")), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("broker.url"), "{e}");
        Ok(())
    });
}

#[test]
fn scale_out_urls_are_accepted_and_tls_redis_is_refused() {
    let mut c = Config::default();
    c.store.url = "postgres://u:pw@127.0.0.1/db".into();
    c.broker.url = "redis://127.0.0.1:6379".into();
    c.finish().unwrap();
    c.broker.url = "rediss://127.0.0.1:6379".into();
    assert!(c.finish().unwrap_err().to_string().contains("broker.url"));
    c.broker.url = "redis://127.0.0.1:6379".into();
    c.broker.prefix = "bad prefix".into();
    assert!(
        c.finish()
            .unwrap_err()
            .to_string()
            .contains("broker.prefix")
    );
    c.broker.prefix = "switchboard".into();
    c.store.url = "mysql://x".into();
    assert!(c.finish().unwrap_err().to_string().contains("store.url"));
}

#[test]
fn unknown_keys_are_refused_with_the_nearest_known_one() {
    figment::Jail::expect_with(|jail| {
        let load = |file: &str| {
            Config::load(Some(Path::new(file)), &Overrides::default())
                .unwrap_err()
                .to_string()
        };
        jail.create_file("a.toml", "lisen = \"127.0.0.1:4000\"\n")?;
        let e = load("a.toml");
        assert!(e.contains("unknown key `lisen`"), "{e}");
        assert!(e.contains("did you mean `listen`?"), "{e}");
        assert!(e.contains("a.toml"), "{e}");
        jail.create_file("b.toml", "[securty]\nallowed_origins = [\"*\"]\n")?;
        let e = load("b.toml");
        assert!(e.contains("did you mean `security`?"), "{e}");
        jail.create_file("c.toml", "[heartbeat]\ninterval_msec = 1000\n")?;
        let e = load("c.toml");
        assert!(e.contains("unknown key `heartbeat.interval_msec`"), "{e}");
        assert!(e.contains("did you mean `heartbeat.interval_ms`?"), "{e}");
        jail.create_file("d.toml", "[namespaces.room]\nhistory_sise = 5\n")?;
        let e = load("d.toml");
        assert!(
            e.contains("did you mean `namespaces.room.history_size`?"),
            "{e}"
        );
        jail.create_file(
            "e.toml",
            "[[cities.alerts]]\nmetric = \"x\"\nabove = 1\nseverity = \"low\"\ncolour = 2\n",
        )?;
        let e = load("e.toml");
        assert!(e.contains("colour") && e.contains("known keys here"), "{e}");
        for e in [load("a.toml"), load("c.toml"), load("e.toml")] {
            assert!(!e.contains("default."), "{e}");
        }
        jail.set_env("SWITCHBOARD_HEARTBEAT__INTERVAL_MSEC", "1000");
        let e = Config::load(None, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("SWITCHBOARD_HEARTBEAT__INTERVAL_MSEC"), "{e}");
        assert!(e.contains("did you mean `heartbeat.interval_ms`"), "{e}");
        assert!(e.contains("SWITCHBOARD_HEARTBEAT__INTERVAL_MS)"), "{e}");
        Ok(())
    });
}

#[test]
fn error_messages_name_keys_without_the_profile() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("SWITCHBOARD_LIMITS__MAX_MESSAGE_BYTES", "lots");
        let e = Config::load(None, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("limits.max_message_bytes"), "{e}");
        assert!(e.contains("SWITCHBOARD_LIMITS__MAX_MESSAGE_BYTES"), "{e}");
        assert!(!e.contains("default."), "{e}");
        Ok(())
    });
}
