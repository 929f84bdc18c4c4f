//! `turtle config`: validate and print the normalized project.
//!
//! A secret's content is never printed: one read from a variable shows as
//! that variable (`environment: TOKEN`, as `docker compose config` prints
//! it), any other as `<redacted>`. Configs are printed whole.

use clap::Args;

use super::ProjectArgs;
use super::context::{self, Failure};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Only validate; print nothing and exit 0 when the files are good.
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_parser = ["yaml", "json"], default_value = "yaml")]
    pub format: String,
    /// Print each service's config hash instead of the project.
    #[arg(long)]
    pub hash: bool,
}

pub fn run(a: ConfigArgs) -> Result<(), Failure> {
    let project = context::load_project(&a.project)?;
    if a.quiet {
        return Ok(());
    }
    if a.hash {
        for (name, s) in &project.services {
            println!("{name} {}", turtle_compose::service_hash(s));
        }
        return Ok(());
    }
    let project = redacted(project);
    let text = if a.format == "json" {
        serde_json::to_string_pretty(&project).map_err(Failure::op)? + "\n"
    } else {
        serde_norway::to_string(&project).map_err(Failure::op)?
    };
    print!("{text}");
    Ok(())
}

/// The project with its secrets' content taken out.
fn redacted(mut project: turtle_compose::Project) -> turtle_compose::Project {
    for secret in project.secrets.values_mut() {
        if secret.content.is_some() {
            secret.content = secret
                .environment
                .is_none()
                .then(|| "<redacted>".to_string());
        }
    }
    project
}

#[cfg(test)]
mod tests {
    use turtle_compose::FileObject;

    use super::*;

    #[test]
    fn a_secrets_content_is_not_printed() {
        let mut p = turtle_compose::Project {
            name: "demo".parse().unwrap(),
            working_dir: "/tmp".into(),
            files: vec![],
            services: Default::default(),
            networks: Default::default(),
            volumes: Default::default(),
            secrets: Default::default(),
            configs: Default::default(),
        };
        let object = |content: &str, env: Option<&str>| FileObject {
            content: Some(content.into()),
            environment: env.map(str::to_string),
            ..Default::default()
        };
        p.secrets
            .insert("env".into(), object("from-env", Some("TOKEN")));
        p.secrets
            .insert("inline".into(), object("inline-secret", None));
        p.configs.insert("conf".into(), object("a config", None));
        let text = serde_norway::to_string(&redacted(p)).unwrap();
        assert!(
            !text.contains("from-env") && !text.contains("inline-secret"),
            "{text}"
        );
        assert!(text.contains("environment: TOKEN"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(text.contains("a config"), "configs are printed: {text}");
    }
}
