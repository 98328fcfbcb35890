//! Dishonest nodes, for the end-to-end tests and the demo. Each speaks the real protocol through
//! the collector's validator client and signs with a real key; what it lies about differs.

use std::net::SocketAddr;
use std::path::Path;

use gleaner_collector::submit::{SubmitError, ValidatorClient};
use gleaner_collector::{Node, NodeConfig};
use gleaner_protocol::api::{Job, LeaseResponse};
use gleaner_protocol::{Batch, Digest, Receipt, Record, RecordDraft, RobotsVerdict, SecretKey};

/// What a dishonest node does with the jobs it leases.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Never fetches: invents a plausible article for every job.
    FabricateAll,
    /// Fetches honestly, except for this share of jobs (0.0–1.0), for which it invents the text:
    /// its first job, then one in every `1 / share`.
    FabricateShare(f64),
    /// Copies records other nodes made: re-signs their text under its own key and lease (it never
    /// fetched anything), and also resubmits their signed records verbatim.
    Replay(Vec<Record>),
    /// Submits records for jobs it was never given (an unsolicited spam identity).
    Unsolicited,
}

/// The outcome of one round: what was leased and what the validator said.
#[derive(Debug, Default)]
pub struct Round {
    pub leased: usize,
    pub fabricated: usize,
    pub receipt: Option<Receipt>,
    /// Reason codes of refused submissions.
    pub refused: Vec<String>,
}

/// A dishonest node.
pub struct Adversary {
    key: SecretKey,
    client: ValidatorClient,
    /// An honest pipeline under the same key, for behaviours that fetch some jobs for real.
    node: Option<Node>,
    behaviour: Behaviour,
    counter: u64,
    /// Jobs answered so far (which of them [`Behaviour::FabricateShare`] lies on).
    answered: u64,
}

impl Adversary {
    /// An adversary with key seed `seed`; `data_dir` holds its honest pipeline's state when
    /// it needs one; `allow_addrs` lets that pipeline reach the local sample site.
    pub fn new(
        validator: &str,
        seed: [u8; 32],
        behaviour: Behaviour,
        data_dir: &Path,
        allow_addrs: &[SocketAddr],
    ) -> anyhow::Result<Self> {
        let key = SecretKey::from_bytes(&seed);
        let node = if matches!(behaviour, Behaviour::FabricateShare(_)) {
            std::fs::create_dir_all(data_dir)?;
            std::fs::write(data_dir.join("node.key"), hex::encode(seed))?;
            let config = NodeConfig {
                data_dir: data_dir.to_path_buf(),
                allow_addrs: allow_addrs.to_vec(),
                min_domain_delay_ms: 0,
                ..NodeConfig::default()
            };
            Some(Node::open(config)?)
        } else {
            None
        };
        Ok(Adversary {
            client: ValidatorClient::new(validator, key.clone())?,
            key,
            node,
            behaviour,
            counter: u64::from_le_bytes([seed[0], seed[1], seed[2], seed[3], 0, 0, 0, 0]),
            answered: 0,
        })
    }

    pub fn public_key(&self) -> gleaner_protocol::PublicKey {
        self.key.public()
    }

    pub async fn register(&self) -> Result<(), SubmitError> {
        self.client.register(self.key.public()).await.map(|_| ())
    }

    /// Points the validator says this identity has earned in total.
    pub async fn points(&self) -> Result<u64, SubmitError> {
        self.client.me().await.map(|s| s.points_total)
    }

    /// Leases up to `max` jobs, answers them according to the behaviour, submits one batch.
    pub async fn round(&mut self, max: u32) -> anyhow::Result<Round> {
        let mut round = Round::default();
        let jobs: Vec<Job> = match self.behaviour {
            Behaviour::Unsolicited => (0..max)
                .map(|i| Job {
                    lease_id: format!("forged-{}-{i}", self.counter),
                    url: format!("https://example.com/spam/{}/{i}", self.counter),
                    expires_at_ms: gleaner_collector::now_ms() + 60_000,
                    follow_links: true,
                })
                .collect(),
            _ => {
                let LeaseResponse { jobs, .. } = self.client.lease(max).await?;
                jobs
            }
        };
        round.leased = jobs.len();
        if jobs.is_empty() {
            return Ok(round);
        }
        let mut records = Vec::new();
        let mut verbatim = Vec::new();
        for job in &jobs {
            self.counter += 1;
            let nth = self.answered;
            self.answered += 1;
            let honest = match &self.behaviour {
                Behaviour::FabricateShare(share) if *share > 0.0 => {
                    // Its first job, then one in every 1/share: it lies from its start, while
                    // the validator still checks every record of an unproven node. A random coin
                    // could put its first lie after it was proven, when only a sampled share of
                    // its records is checked, and a short run's bound then rested on that coin.
                    let every = (1.0 / share).round().max(1.0) as u64;
                    !nth.is_multiple_of(every)
                }
                Behaviour::FabricateShare(_) => true,
                _ => false,
            };
            if honest {
                if let Some(node) = &self.node {
                    match node.fetch_one(&job.url).await {
                        Ok(r) => records.push(relabel(r, &job.lease_id).sign(&self.key)),
                        Err(_) => continue,
                    }
                }
                continue;
            }
            if let Behaviour::Replay(seen) = &self.behaviour {
                if let Some(original) = seen.iter().find(|r| r.url == job.url) {
                    records.push(relabel(original.clone(), &job.lease_id).sign(&self.key));
                    verbatim.push(original.clone());
                    round.fabricated += 1;
                    continue;
                }
                if let Some(any) = seen.get((self.counter as usize) % seen.len().max(1)) {
                    verbatim.push(any.clone());
                }
            }
            round.fabricated += 1;
            records.push(fabricate(job, self.counter).sign(&self.key));
        }
        let batch = Batch::new(&self.key, gleaner_collector::now_ms(), records);
        self.send(&batch, &mut round).await?;
        if !verbatim.is_empty() {
            // Someone else's signed records, in a batch signed by this node.
            let stolen = Batch::new(&self.key, gleaner_collector::now_ms(), verbatim);
            self.send(&stolen, &mut round).await?;
        }
        Ok(round)
    }

    async fn send(&self, batch: &Batch, round: &mut Round) -> anyhow::Result<()> {
        match self
            .client
            .submit(&batch.id(), batch.encode()?, batch.header.record_count)
            .await
        {
            Ok(receipt) => {
                if round.receipt.is_none() {
                    round.receipt = Some(receipt);
                }
            }
            Err(e) => round.refused.push(e.code().to_string()),
        }
        Ok(())
    }
}

/// A record's content under another lease, ready to be signed by another key.
fn relabel(r: Record, lease_id: &str) -> RecordDraft {
    RecordDraft {
        lease_id: lease_id.to_string(),
        url: r.url,
        final_url: r.final_url,
        fetched_at_ms: gleaner_collector::now_ms(),
        status: r.status,
        content_type: r.content_type,
        charset: r.charset,
        wire_bytes: r.wire_bytes,
        body_bytes: r.body_bytes,
        truncated: r.truncated,
        raw_digest: r.raw_digest,
        title: r.title,
        text: r.text,
        lang: r.lang,
        robots: r.robots,
        crawl_delay_ms: r.crawl_delay_ms,
        outlinks: r.outlinks.iter().map(str::to_owned).collect(),
    }
}

/// An invented page for `job`: plausible, well-formed, signed — and never fetched.
fn fabricate(job: &Job, seed: u64) -> RecordDraft {
    let (title, text) = crate::site::fabricated_article(seed);
    let body =
        format!("<html><head><title>{title}</title></head><body><p>{text}</p></body></html>");
    RecordDraft {
        lease_id: job.lease_id.clone(),
        url: job.url.clone(),
        final_url: job.url.clone(),
        fetched_at_ms: gleaner_collector::now_ms(),
        status: 200,
        content_type: "text/html".into(),
        charset: "utf-8".into(),
        wire_bytes: body.len() as u64,
        body_bytes: body.len() as u64,
        truncated: false,
        raw_digest: Digest::of(body.as_bytes()),
        title,
        text,
        lang: "en".into(),
        robots: RobotsVerdict::Allowed,
        crawl_delay_ms: 0,
        outlinks: Vec::new(),
    }
}
