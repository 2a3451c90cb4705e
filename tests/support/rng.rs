//! A small deterministic RNG (xorshift64) whose seed is printed at the start
//! of each test and taken from `SOUTE_TEST_SEED` when set, so a failing
//! random run replays exactly: `SOUTE_TEST_SEED=N cargo test ... NAME`.
//! Must NEVER be used where unpredictability matters (it is not a CSPRNG).

pub const SEED_ENV: &str = "SOUTE_TEST_SEED";

pub struct Rng {
    state: u64,
    seed: u64,
    test: String,
}

impl Rng {
    /// A fixed seed (not printed: the test names it in its source).
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: seed | 1,
            seed,
            test: String::new(),
        }
    }

    /// The seed from `SOUTE_TEST_SEED`, else from the clock; printed now and
    /// again if the test panics while this RNG is alive.
    pub fn seeded(test: &str) -> Rng {
        let seed = match std::env::var(SEED_ENV) {
            Ok(v) => v
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{SEED_ENV}={v:?} is not a u64")),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(42),
        };
        eprintln!("{test}: {SEED_ENV}={seed} (set it to replay this run)");
        let mut rng = Rng::new(seed);
        rng.test = test.to_string();
        rng
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// Uniform-ish in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

impl Drop for Rng {
    fn drop(&mut self) {
        if !self.test.is_empty() && std::thread::panicking() {
            eprintln!(
                "{}: failed with {SEED_ENV}={} - replay with {SEED_ENV}={} cargo test --release {}",
                self.test, self.seed, self.seed, self.test
            );
        }
    }
}
