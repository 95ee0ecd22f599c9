//! The files an operator reads agree with the code: `.env.example`, the
//! README's configuration table and the settings the server reads name the
//! same variables; the container image builds with the README's command.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic

use std::collections::BTreeSet;
use std::path::Path;

fn read(relative: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every variable `Settings` asks for, with a provider configured so that
/// its variables are asked for too.
fn variables_the_code_reads() -> BTreeSet<String> {
    let seen = std::cell::RefCell::new(BTreeSet::new());
    let settings = parley_server::Settings::from_lookup(|name| {
        seen.borrow_mut().insert(name.to_owned());
        (name == "LLM_BASE_URL").then(|| "http://127.0.0.1:9/v1".to_owned())
    })
    .unwrap();
    let printed: BTreeSet<String> = settings.effective().into_iter().map(|(name, _)| name.to_owned()).collect();
    let read = seen.into_inner();
    assert_eq!(printed, read, "`parley config` prints exactly the settings the server reads");
    read
}

#[test]
fn env_example_readme_and_code_name_the_same_variables() {
    let code = variables_the_code_reads();
    let example: BTreeSet<String> = read(".env.example")
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim().to_owned()))
        .collect();
    assert_eq!(example, code, ".env.example");
    let readme = read("README.md");
    let table = readme.split("## Configuration").nth(1).unwrap().split("\n## ").next().unwrap();
    let documented: BTreeSet<String> = table
        .lines()
        .filter(|line| line.starts_with("| `"))
        .filter_map(|line| line.split('|').nth(1))
        .flat_map(|cell| cell.split(',').map(|name| name.trim().trim_matches('`').to_owned()).collect::<Vec<_>>())
        .collect();
    assert_eq!(documented, code, "README configuration table");
}

#[test]
fn the_image_builds_with_the_readmes_release_command() {
    let readme = read("README.md");
    let command = readme
        .lines()
        .find(|line| line.starts_with("cargo build --profile dist"))
        .expect("the README shows the image's build command");
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.lines().any(|line| line.trim() == format!("RUN {command}")), "Dockerfile runs `{command}`");
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("USER parley") && dockerfile.contains("VOLUME"));
}

#[test]
fn compose_runs_parley_on_postgres_16_and_redis_7_after_they_are_healthy() {
    let compose: serde_json::Value = serde_yaml::from_str(&read("compose.yaml")).expect("compose.yaml is YAML");
    let services = &compose["services"];
    assert_eq!(services["postgres"]["image"], "postgres:16");
    assert_eq!(services["redis"]["image"], "redis:7");
    for dependency in ["postgres", "redis"] {
        assert!(services[dependency]["healthcheck"].is_object(), "{dependency} has a health check");
        assert_eq!(services["parley"]["depends_on"][dependency]["condition"], "service_healthy");
    }
}
