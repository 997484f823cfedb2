//! The fixture of the virtual reference tests: a repository next to a local source file, and
//! helpers to reference, commit and read its chunks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use floe::{
    Repository, SourceChecksum, VirtualAccess, VirtualChunkRef, VirtualContainer, VirtualSource,
};
use object_store::ObjectStoreExt;

use crate::common::{p, uint8_array};

pub const CHUNK: u64 = 100;
pub const CHUNKS: u64 = 100;

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// A repository at `<dir>/repo` and the source file `<dir>/data/src.bin`.
    pub async fn new() -> (Fixture, Repository) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let fixture = Fixture { dir };
        fixture.write_source(0);
        let repo = Repository::init_location(fixture.repo_path().to_str().unwrap(), &vec![])
            .await
            .unwrap();
        (fixture, repo)
    }

    pub fn repo_path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn source_path(&self) -> PathBuf {
        self.data_dir().join("src.bin")
    }

    /// `file://.../data/`.
    pub fn prefix(&self) -> String {
        url::Url::from_directory_path(self.data_dir())
            .unwrap()
            .to_string()
    }

    pub fn source_url(&self) -> String {
        url::Url::from_file_path(self.source_path())
            .unwrap()
            .to_string()
    }

    /// Writes the source file: chunk `i` is filled with byte `i + salt`.
    pub fn write_source(&self, salt: u8) {
        let bytes: Vec<u8> = (0..CHUNKS)
            .flat_map(|i| std::iter::repeat_n((i as u8).wrapping_add(salt), CHUNK as usize))
            .collect();
        std::fs::write(self.source_path(), bytes).unwrap();
    }

    /// Rewrites the source with other bytes and moves its modification time 10 s ahead.
    pub fn rewrite_source(&self) {
        let modified = std::fs::metadata(self.source_path())
            .unwrap()
            .modified()
            .unwrap();
        self.write_source(7);
        let file = std::fs::File::options()
            .write(true)
            .open(self.source_path())
            .unwrap();
        file.set_modified(modified + Duration::from_secs(10))
            .unwrap();
    }

    pub async fn open(&self, access: VirtualAccess) -> Repository {
        Repository::open_location(self.repo_path().to_str().unwrap(), &vec![])
            .await
            .unwrap()
            .with_virtual_access(access)
    }
}

pub fn main() -> floe::VersionSpec {
    floe::VersionSpec::parse("main").unwrap()
}

pub fn expected_chunk(i: u64) -> Bytes {
    Bytes::from(vec![i as u8; CHUNK as usize])
}

/// The ETag the local store reports for `path`.
pub async fn etag_of(path: &Path) -> String {
    let store = object_store::local::LocalFileSystem::new();
    let location = object_store::path::Path::from_absolute_path(path).unwrap();
    store.head(&location).await.unwrap().e_tag.unwrap()
}

pub fn modified_secs(path: &Path) -> i64 {
    let modified = std::fs::metadata(path).unwrap().modified().unwrap();
    modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn source(location: &str, checksum: Option<SourceChecksum>) -> Arc<VirtualSource> {
    Arc::new(VirtualSource {
        location: location.to_string(),
        checksum,
    })
}

pub fn chunk_ref(source: &Arc<VirtualSource>, i: u64) -> VirtualChunkRef {
    VirtualChunkRef {
        source: source.clone(),
        offset: i * CHUNK,
        length: CHUNK,
    }
}

/// Creates array `a` referencing every chunk of `source`, declares `container` (when given)
/// and commits.
pub async fn commit_refs(repo: &Repository, source: &Arc<VirtualSource>, container: Option<&str>) {
    if let Some(prefix) = container {
        repo.declare_virtual_containers(&[VirtualContainer::new(prefix, vec![]).unwrap()])
            .await
            .unwrap();
    }
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&p(""), Default::default()).await.unwrap();
    s.create_array(&p("a"), uint8_array(&[CHUNK * CHUNKS], &[CHUNK]))
        .await
        .unwrap();
    for i in 0..CHUNKS {
        s.set_virtual_chunk(&p("a"), &[i], chunk_ref(source, i))
            .await
            .unwrap();
    }
    s.commit("virtual refs", None).await.unwrap();
}

/// One read of chunk `a[i]` on `main`.
pub async fn read(repo: &Repository, i: u64) -> floe::Result<Option<Bytes>> {
    let s = repo.readonly_session(&main()).await.unwrap();
    s.get_chunk(&p("a"), &[i]).await
}

pub async fn committed_fixture(checksum: Option<SourceChecksum>) -> (Fixture, Repository) {
    let (fx, repo) = Fixture::new().await;
    let src = source(&fx.source_url(), checksum);
    commit_refs(&repo, &src, Some(&fx.prefix())).await;
    (fx, repo)
}
