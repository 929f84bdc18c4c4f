//! The planner and the applier together on the recording fake: a plan
//! applied, then planned again, is empty (idempotence), and each rule of
//! the planner shows in what the engine is asked to do.

#[cfg(test)]
mod tests {
    use turtle_compose::{Condition, Project, Service};
    use turtle_engine::State;
    use turtle_engine::fake::FakeEngine;
    use turtle_reconcile::observe::observe;
    use turtle_reconcile::plan::*;
    use turtle_reconcile::test_support::{depends, healthy, service};

    use crate::apply::{self, apply};

    fn project(services: Vec<(&str, Service)>) -> Project {
        turtle_reconcile::test_support::project("demo", services)
    }

    fn quick() -> apply::Options {
        apply::Options {
            dependency_timeout: std::time::Duration::from_secs(2),
            ..Default::default()
        }
    }

    /// A one-shot `init` and an `app` that waits for it to complete.
    fn init_then_app() -> Vec<(&'static str, Service)> {
        vec![
            ("init", service("busybox")),
            (
                "app",
                depends(
                    service("busybox"),
                    "init",
                    Condition::ServiceCompletedSuccessfully,
                    false,
                ),
            ),
        ]
    }

    async fn up(engine: &FakeEngine, p: &Project) -> Plan {
        let observed = observe(engine, p).await.unwrap();
        let plan = plan(p, &observed, &Options::default()).unwrap();
        apply(engine, p, &plan, &quick(), &|_| {}).await.unwrap();
        plan
    }

    fn actions(plan: &Plan) -> Vec<String> {
        plan.steps.iter().map(|s| s.action.to_string()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn first_up_creates_everything_and_second_up_changes_nothing() {
        let engine = FakeEngine::new();
        engine.add_image("busybox");
        let p = project(vec![
            (
                "web",
                depends(service("busybox"), "db", Condition::ServiceHealthy, false),
            ),
            ("db", healthy(service("busybox"))),
        ]);
        let first = up(&engine, &p).await;
        assert_eq!(
            actions(&first),
            [
                "create network demo_default",
                "create and start container demo-db-1",
                "create and start container demo-web-1"
            ]
        );
        // web waits for db's step.
        assert_eq!(first.steps[2].after, vec![0, 1]);
        engine.clear_calls();
        let second = up(&engine, &p).await;
        assert!(second.is_empty(), "{second}");
        assert_eq!(engine.mutating_calls(), Vec::<String>::new());
    }

    /// An image named by digest (a fleet release's pin) is pulled and run
    /// without the tag that stamps a pull's time: a digest is not a tag.
    #[tokio::test(start_paused = true)]
    async fn an_image_by_digest_is_pulled_and_never_tagged() {
        let engine = FakeEngine::new();
        let image = "registry.p.local:8443/prod/web@sha256:ab";
        let p = project(vec![("web", service(image))]);
        let plan = up(&engine, &p).await;
        assert!(
            actions(&plan).contains(&format!("pull image {image}")),
            "{plan}"
        );
        assert!(
            !engine.calls().iter().any(|c| c.starts_with("tag_image")),
            "{:?}",
            engine.calls()
        );
        let web = engine.containers();
        assert_eq!(web.len(), 1);
        assert_eq!(web[0].summary.state, State::Running);
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_service_alone_is_recreated_and_restart_dependents_follow() {
        let engine = FakeEngine::new();
        engine.add_image("busybox");
        let mut p = project(vec![
            (
                "api",
                depends(service("busybox"), "db", Condition::ServiceStarted, true),
            ),
            ("db", service("busybox")),
            ("other", service("busybox")),
        ]);
        up(&engine, &p).await;
        p.services["db"].environment.insert("X".into(), "1".into());
        let observed = observe(&engine, &p).await.unwrap();
        let plan = plan(&p, &observed, &Options::default()).unwrap();
        assert_eq!(
            actions(&plan),
            [
                "recreate container demo-db-1 (configuration or image changed)",
                "restart container demo-api-1 (db changed)"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn orphans_go_and_missing_images_are_built_or_pulled() {
        let engine = FakeEngine::new();
        engine.add_image("busybox");
        let p = project(vec![("a", service("busybox")), ("b", service("busybox"))]);
        up(&engine, &p).await;
        let mut built = service("demo-c");
        built.build = Some(turtle_compose::Build {
            context: "/tmp".into(),
            ..Default::default()
        });
        let p2 = project(vec![
            ("a", service("busybox")),
            ("c", built),
            ("d", service("redis")),
        ]);
        let observed = observe(&engine, &p2).await.unwrap();
        let plan = plan(&p2, &observed, &Options::default()).unwrap();
        assert_eq!(
            actions(&plan),
            [
                "build image demo-c for c",
                "pull image redis",
                "create and start container demo-c-1",
                "create and start container demo-d-1",
                "remove container demo-b-1 (service no longer in the project)"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn repair_recreates_only_what_vanished() {
        let engine = FakeEngine::new();
        engine.add_image("busybox");
        let mut p = project(vec![("a", service("busybox")), ("b", service("busybox"))]);
        up(&engine, &p).await;
        engine.vanish("demo-a-1");
        engine.set_state("demo-b-1", State::Exited, None);
        p.services["b"].environment.insert("Y".into(), "2".into());
        let observed = observe(&engine, &p).await.unwrap();
        let opts = Options {
            mode: Mode::Repair,
            ..Default::default()
        };
        let plan = plan(&p, &observed, &opts).unwrap();
        assert_eq!(actions(&plan), ["create and start container demo-a-1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn finished_one_shots_and_held_services_stay_stopped() {
        let engine = FakeEngine::new();
        engine.add_image("busybox");
        engine.exit_on_start("init", 0);
        let p = project(init_then_app());
        up(&engine, &p).await;
        engine.set_state("demo-app-1", State::Exited, None);
        let observed = observe(&engine, &p).await.unwrap();
        let held = Options {
            held: ["app".to_string()].into(),
            ..Default::default()
        };
        assert!(plan(&p, &observed, &held).unwrap().is_empty());
        let plan = plan(&p, &observed, &Options::default()).unwrap();
        assert_eq!(actions(&plan), ["start container demo-app-1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_one_shot_fails_its_dependents() {
        let engine = FakeEngine::new();
        engine.add_image("busybox");
        engine.exit_on_start("init", 3);
        let p = project(init_then_app());
        let observed = observe(&engine, &p).await.unwrap();
        let plan = plan(&p, &observed, &Options::default()).unwrap();
        let err = apply(&engine, &p, &plan, &quick(), &|_| {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("exited with code 3"), "{err}");
        assert!(
            !engine
                .calls()
                .iter()
                .any(|c| c == "create_container demo-app-1")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_outdated_container_goes_only_after_the_new_image_is_ready() {
        let engine = FakeEngine::new();
        engine.add_image("busybox");
        let mut p = project(vec![("a", service("busybox"))]);
        up(&engine, &p).await;
        p.services["a"].image = Some("redis".into());
        let observed = observe(&engine, &p).await.unwrap();
        let plan = plan(&p, &observed, &Options::default()).unwrap();
        assert_eq!(
            actions(&plan),
            [
                "pull image redis",
                "recreate container demo-a-1 (configuration or image changed)"
            ]
        );
        assert_eq!(
            plan.steps[1].after,
            vec![0],
            "the recreate must wait for the pull"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn scale_to_zero_and_renamed_networks_are_honoured() {
        let engine = FakeEngine::new();
        engine.add_image("busybox");
        let mut p = project(vec![("a", service("busybox")), ("b", service("busybox"))]);
        up(&engine, &p).await;
        p.services["a"].replicas = 0;
        p.networks["default"].name = "renamed".into();
        let observed = observe(&engine, &p).await.unwrap();
        let plan = plan(&p, &observed, &Options::default()).unwrap();
        assert_eq!(
            actions(&plan),
            [
                "create network renamed",
                "remove container demo-a-1 (scaled down)",
                "recreate container demo-b-1 (configuration or image changed)"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn repair_starts_never_started_containers_but_not_held_or_one_shots() {
        let engine = FakeEngine::new();
        engine.add_image("busybox");
        engine.exit_on_start("init", 0);
        let mut services = init_then_app();
        services.push(("held", service("busybox")));
        let p = project(services);
        up(&engine, &p).await;
        engine.vanish("demo-init-1");
        engine.vanish("demo-held-1");
        engine.set_state("demo-app-1", State::Created, None);
        let observed = observe(&engine, &p).await.unwrap();
        let opts = Options {
            mode: Mode::Repair,
            held: ["held".to_string()].into(),
        };
        let plan = plan(&p, &observed, &opts).unwrap();
        assert_eq!(actions(&plan), ["start container demo-app-1"]);
    }

    /// A dependency that never turns healthy fails its dependent after the
    /// dependency timeout of tokio's clock: five minutes pass in no time
    /// under paused time, and the dependent is never created.
    #[tokio::test(start_paused = true)]
    async fn a_dependency_that_never_turns_healthy_times_out_on_tokios_clock() {
        let engine = FakeEngine::new();
        engine.add_image("busybox");
        engine.never_healthy("db");
        let p = project(vec![
            ("db", healthy(service("busybox"))),
            (
                "app",
                depends(service("busybox"), "db", Condition::ServiceHealthy, false),
            ),
        ]);
        let observed = observe(&engine, &p).await.unwrap();
        let plan = plan(&p, &observed, &Options::default()).unwrap();
        let opts = apply::Options::default();
        let started = tokio::time::Instant::now();
        let err = apply(&engine, &p, &plan, &opts, &|_| {})
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("not met after 300s"), "{err}");
        assert!(started.elapsed() >= opts.dependency_timeout);
        assert!(
            !engine
                .calls()
                .iter()
                .any(|c| c.starts_with("create_container demo-app")),
            "{:?}",
            engine.calls()
        );
    }

    /// A dependency the engine still calls starting is ready for its
    /// dependent as soon as a probe of its own healthcheck passes: the
    /// dependent is created, and the step tells how the dependency became
    /// ready. With probing off, the same dependency holds it until the
    /// deadline.
    #[tokio::test(start_paused = true)]
    async fn a_starting_dependency_whose_probe_passes_is_ready() {
        let engine = FakeEngine::new();
        engine.add_image("busybox");
        engine.never_healthy("db");
        // The probe's check (CMD true) passes; the engine's never does.
        engine.exec_result(
            "true",
            turtle_engine::ExecOutcome {
                exit_code: 0,
                output_tail: String::new(),
                ..Default::default()
            },
        );
        let p = project(vec![
            ("db", healthy(service("busybox"))),
            (
                "app",
                depends(service("busybox"), "db", Condition::ServiceHealthy, false),
            ),
        ]);
        let observed = observe(&engine, &p).await.unwrap();
        let first = plan(&p, &observed, &Options::default()).unwrap();
        let events = std::sync::Mutex::new(Vec::new());
        let sink = |e: apply::Event| events.lock().unwrap().push(e);
        apply(&engine, &p, &first, &apply::Options::default(), &sink)
            .await
            .unwrap();
        assert!(
            engine
                .calls()
                .iter()
                .any(|c| c.starts_with("create_container demo-app")),
            "{:?}",
            engine.calls()
        );
        let became: Vec<_> = events
            .lock()
            .unwrap()
            .iter()
            .filter_map(apply::Event::became)
            .collect();
        assert_eq!(became.len(), 1, "{became:?}");
        assert_eq!(became[0].service, "db");
        assert!(became[0].probed_after.is_some());
        assert!(became[0].to_string().contains("healthy (probed after"));
        // One probe was enough: its check ran once, in db's container.
        let probes = engine.execs();
        assert_eq!(probes.len(), 1, "{probes:?}");
        assert_eq!(probes[0].1.command, vec!["true".to_string()]);

        // Probing off: the dependency is waited for until the deadline.
        let engine = FakeEngine::new();
        engine.add_image("busybox");
        engine.never_healthy("db");
        let observed = observe(&engine, &p).await.unwrap();
        let second = plan(&p, &observed, &Options::default()).unwrap();
        let off = apply::Options {
            probe: false,
            ..Default::default()
        };
        let err = apply(&engine, &p, &second, &off, &|_| {})
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("not met after"), "{err}");
        assert!(engine.execs().is_empty());
    }
}
