//! The sealer: seal and open envelopes with per-room keys.
//!
//! A [`Sealer`] is what the Node addon, the C library and the server each
//! hold one of. It is `Send + Sync`; every method takes `&self`, so one
//! sealer serves all threads. Its keyring can be replaced while it is in use
//! (rotation, reload): readers take a snapshot with one atomic load, and a
//! snapshot carries its own room-cipher cache, so a replaced keyring can never
//! be mixed with ciphers derived from the old one.

use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use zeroize::Zeroizing;

use crate::aead::TAG_LEN;
use crate::cache::{DEFAULT_CAPACITY, RoomCache, RoomCipher};
use crate::envelope::{self, HEADER_LEN, Header};
use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::nonce::{self, NONCE_LEN};
use crate::room::{Room, derive_room_key};
use crate::secret::SecretKey;

/// Seals with one key that random 96-bit nonces allow (NIST SP 800-38D):
/// past this the chance of a repeated nonce exceeds 2^-32.
pub const SEAL_BUDGET_PER_KEY: u64 = 1 << 32;

/// One item of [`Sealer::seal_batch`].
#[derive(Clone, Copy)]
pub struct SealRequest<'a> {
    pub room: &'a str,
    /// The room's key epoch (0: the room's first key).
    pub epoch: u32,
    pub context: &'a [u8],
    pub plaintext: &'a [u8],
}

/// Shows the plaintext's length, never its bytes.
impl std::fmt::Debug for SealRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealRequest")
            .field("room", &self.room)
            .field("epoch", &self.epoch)
            .field("context", &self.context)
            .field("plaintext_len", &self.plaintext.len())
            .finish()
    }
}

/// One item of [`Sealer::open_batch`].
#[derive(Debug, Clone, Copy)]
pub struct OpenRequest<'a> {
    pub room: &'a str,
    /// The key epoch the envelope was sealed under (0: the room's first key).
    pub epoch: u32,
    pub context: &'a [u8],
    pub envelope: &'a [u8],
}

/// One item of [`Sealer::rewrap_batch`]: the same three things `open` takes.
pub type RewrapRequest<'a> = OpenRequest<'a>;

/// What [`Sealer::rewrap`] did with an envelope.
///
/// `T` is the envelope's form: `Vec<u8>` for binary ([`Sealer::rewrap`]),
/// `String` for text ([`Sealer::rewrap_text`]). Neither variant carries
/// plaintext: it exists only inside the engine, in a buffer wiped on drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrapped<T = Vec<u8>> {
    /// The envelope opened and is already sealed under the primary key:
    /// keep the stored bytes. Nothing was sealed and no nonce was spent.
    Unchanged,
    /// The envelope opened under an older (or other) key and was sealed
    /// again, with the same room and context and a fresh nonce, under
    /// `key_id`, the primary of the keyring snapshot the call used.
    Resealed { key_id: u32, envelope: T },
}

impl<T> Rewrapped<T> {
    /// The new envelope, or `None` when the stored one stays.
    pub fn into_envelope(self) -> Option<T> {
        match self {
            Self::Unchanged => None,
            Self::Resealed { envelope, .. } => Some(envelope),
        }
    }

    /// Whether the envelope was left as it was.
    pub fn is_unchanged(&self) -> bool {
        matches!(self, Self::Unchanged)
    }
}

/// What [`Sealer::seal_batch_packed`] returns: binary envelopes back to
/// back in one buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealedBatch {
    bytes: Vec<u8>,
    /// Where each envelope ends in `bytes`, in the items' order.
    ends: Vec<usize>,
}

impl SealedBatch {
    /// How many envelopes.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch was empty.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`-th envelope, in the items' order.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.bytes[start..end])
    }

    /// The envelopes in the items' order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.len()).map(|i| self.get(i).expect("within len"))
    }
}

/// A room key for a client: the master key id and room epoch it derives
/// from, and the key.
#[derive(Debug, Clone)]
pub struct RoomKey {
    pub key_id: u32,
    pub epoch: u32,
    pub key: SecretKey,
}

struct Snapshot {
    keyring: Keyring,
    primary_seals: Arc<AtomicU64>,
    cache: RoomCache,
}

/// Seals and opens envelopes; see the module docs.
pub struct Sealer {
    current: ArcSwap<Snapshot>,
    /// Seal counts per key id; kept across keyring replacements.
    seals: Mutex<BTreeMap<u32, Arc<AtomicU64>>>,
    /// Serializes writers (rotate/replace) so none is lost.
    writer: Mutex<()>,
    cache_capacity: usize,
}

impl Sealer {
    /// A sealer over `keyring` with the default room-cipher cache size.
    pub fn new(keyring: Keyring) -> Self {
        Self::with_cache_capacity(keyring, DEFAULT_CAPACITY)
    }

    /// A sealer whose cache keeps at most `capacity` room ciphers.
    pub fn with_cache_capacity(keyring: Keyring, capacity: usize) -> Self {
        let seals = Mutex::new(BTreeMap::new());
        let snapshot = Self::snapshot(&seals, keyring, capacity);
        Self {
            current: ArcSwap::from_pointee(snapshot),
            seals,
            writer: Mutex::new(()),
            cache_capacity: capacity,
        }
    }

    fn snapshot(
        seals: &Mutex<BTreeMap<u32, Arc<AtomicU64>>>,
        keyring: Keyring,
        capacity: usize,
    ) -> Snapshot {
        let primary_seals = Arc::clone(
            lock(seals)
                .entry(keyring.primary())
                .or_insert_with(|| Arc::new(AtomicU64::new(0))),
        );
        Snapshot {
            keyring,
            primary_seals,
            cache: RoomCache::new(capacity),
        }
    }

    /// A copy of the current keyring (for saving after a rotation).
    pub fn keyring(&self) -> Keyring {
        self.current.load().keyring.clone()
    }

    /// Id of the key that seals now.
    pub fn primary_key_id(&self) -> u32 {
        self.current.load().keyring.primary()
    }

    /// Replaces the keyring (a reload). Seals in flight finish with the old one.
    pub fn replace_keyring(&self, keyring: Keyring) {
        let _writer = lock(&self.writer);
        self.install(keyring);
    }

    fn install(&self, keyring: Keyring) {
        let snapshot = Self::snapshot(&self.seals, keyring, self.cache_capacity);
        self.current.store(Arc::new(snapshot));
    }

    /// Adds a fresh key and makes it primary; returns the new keyring so the
    /// caller can persist it.
    pub fn rotate(&self) -> Result<Keyring> {
        let _writer = lock(&self.writer);
        let mut keyring = self.keyring();
        keyring.rotate()?;
        self.install(keyring.clone());
        Ok(keyring)
    }

    /// Seals per key id since this sealer was made, ascending by id. Each
    /// room key of a master key has its own nonce space, so a count is an
    /// upper bound for every room; compare it with [`SEAL_BUDGET_PER_KEY`].
    pub fn seal_counts(&self) -> Vec<(u32, u64)> {
        lock(&self.seals)
            .iter()
            .map(|(id, n)| (*id, n.load(Ordering::Relaxed)))
            .collect()
    }

    fn cipher(snapshot: &Snapshot, key_id: u32, room: Room<'_>) -> Result<Arc<RoomCipher>> {
        snapshot.cache.get_or_make(key_id, room, || {
            let master = snapshot.keyring.key(key_id)?;
            Ok(RoomCipher::new(derive_room_key(master, room)?))
        })
    }

    /// The key of `room` under master key `key_id`, for a member.
    pub fn room_key<'r>(&self, room: impl Into<Room<'r>>, key_id: u32) -> Result<RoomKey> {
        let room = room.into();
        let snapshot = self.current.load();
        Ok(RoomKey {
            key_id,
            epoch: room.epoch,
            key: Self::cipher(&snapshot, key_id, room)?.key.clone(),
        })
    }

    /// Every key of `room` that may open envelopes (ids ≥ `min_decrypt`),
    /// ascending by id: what a member needs to read the room's history.
    pub fn room_keys<'r>(&self, room: impl Into<Room<'r>>) -> Result<Vec<RoomKey>> {
        let room = room.into();
        let snapshot = self.current.load();
        snapshot
            .keyring
            .usable_key_ids()
            .map(|key_id| {
                Ok(RoomKey {
                    key_id,
                    epoch: room.epoch,
                    key: Self::cipher(&snapshot, key_id, room)?.key.clone(),
                })
            })
            .collect()
    }

    /// Seals `plaintext` for `room` with `context` as associated data into a
    /// new binary envelope.
    pub fn seal<'r>(
        &self,
        room: impl Into<Room<'r>>,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let room = room.into();
        let snapshot = self.current.load();
        self.seal_to_vec(&snapshot, room, context, plaintext)
    }

    /// Seals one message into a new vector under `snapshot`'s primary key,
    /// and counts the seal.
    fn seal_to_vec(
        &self,
        snapshot: &Snapshot,
        room: Room<'_>,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let key_id = snapshot.keyring.primary();
        let cipher = Self::cipher(snapshot, key_id, room)?;
        let out = seal_vec(&cipher, key_id, &nonce::fresh(), context, plaintext)?;
        snapshot.primary_seals.fetch_add(1, Ordering::Relaxed);
        Ok(out)
    }

    /// Seals into `out`, which must hold at least
    /// [`envelope::sealed_len`]`(plaintext.len())` bytes; returns the length
    /// written. Nothing is written unless sealing succeeds.
    pub fn seal_into<'r>(
        &self,
        room: impl Into<Room<'r>>,
        context: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize> {
        let room = room.into();
        let len = sealed_len(plaintext.len())?;
        let out = out
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall { needed: len })?;
        let snapshot = self.current.load();
        self.seal_with(&snapshot, room, context, plaintext, &nonce::fresh(), out)?;
        Ok(len)
    }

    /// Seals and returns the text form (standard base64).
    pub fn seal_text<'r>(
        &self,
        room: impl Into<Room<'r>>,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<String> {
        let room = room.into();
        Ok(envelope::encode_text(&self.seal(room, context, plaintext)?))
    }

    /// Seals many messages with one keyring snapshot. All or nothing: the
    /// first invalid item fails the batch.
    pub fn seal_batch(&self, items: &[SealRequest<'_>]) -> Result<Vec<Vec<u8>>> {
        let mut sealed = Vec::with_capacity(items.len());
        self.seal_each(items, |cipher, key_id, nonce, item| {
            sealed.push(seal_vec(
                cipher,
                key_id,
                nonce,
                item.context,
                item.plaintext,
            )?);
            Ok(())
        })?;
        Ok(sealed)
    }

    /// [`Sealer::seal_batch`] into one buffer: the envelopes back to back,
    /// with where each ends. Two allocations for the whole batch instead of
    /// one per message.
    pub fn seal_batch_packed(&self, items: &[SealRequest<'_>]) -> Result<SealedBatch> {
        let total = items.iter().try_fold(0usize, |sum, item| {
            match sum.checked_add(sealed_len(item.plaintext.len())?) {
                Some(sum) => Ok(sum),
                None => Err(Error::TooLarge("the batch's length overflows")),
            }
        })?;
        let mut batch = SealedBatch {
            bytes: Vec::with_capacity(total),
            ends: Vec::with_capacity(items.len()),
        };
        self.seal_each(items, |cipher, key_id, nonce, item| {
            seal_append(
                cipher,
                key_id,
                nonce,
                item.context,
                item.plaintext,
                &mut batch.bytes,
            )?;
            batch.ends.push(batch.bytes.len());
            Ok(())
        })?;
        Ok(batch)
    }

    /// The batch loop: calls `seal` for each item in order with its cipher,
    /// the primary key id and a fresh nonce, stopping at the first error.
    /// What can be shared between seals is: one snapshot, one cipher for
    /// each run of items for the same room (a batch is usually one room's
    /// messages), nonces drawn 32 at a time, and one update of the seal
    /// count, which counts every item `seal` accepted even if a later one
    /// fails (its nonce was spent).
    fn seal_each<'i>(
        &self,
        items: &'i [SealRequest<'i>],
        mut seal: impl FnMut(&RoomCipher, u32, &[u8; NONCE_LEN], &SealRequest<'i>) -> Result<()>,
    ) -> Result<()> {
        const NONCES: usize = 32;
        let snapshot = self.current.load();
        let key_id = snapshot.keyring.primary();
        let mut done = 0u64;
        let mut run: Option<(Room<'_>, Arc<RoomCipher>)> = None;
        let mut nonces = [[0u8; NONCE_LEN]; NONCES];
        let outcome = items.chunks(NONCES).try_for_each(|part| {
            let nonces = &mut nonces[..part.len()];
            nonce::fill(nonces);
            part.iter()
                .zip(nonces.iter())
                .try_for_each(|(item, nonce)| {
                    let room = Room::at(item.room, item.epoch);
                    let cipher = match &run {
                        Some((same, cipher)) if *same == room => cipher,
                        _ => &run.insert((room, Self::cipher(&snapshot, key_id, room)?)).1,
                    };
                    seal(cipher, key_id, nonce, item)?;
                    done += 1;
                    Ok(())
                })
        });
        snapshot.primary_seals.fetch_add(done, Ordering::Relaxed);
        outcome
    }

    /// The one sealing path. `out` is exactly `sealed_len` long.
    fn seal_with(
        &self,
        snapshot: &Snapshot,
        room: Room<'_>,
        context: &[u8],
        plaintext: &[u8],
        nonce: &[u8; NONCE_LEN],
        out: &mut [u8],
    ) -> Result<()> {
        // Every check comes before the first write to `out`, so a caller's
        // buffer is left untouched on failure.
        if plaintext.len() as u64 > crate::aead::MAX_PLAINTEXT_LEN {
            return Err(Error::TooLarge("AES-GCM seals at most 64 GiB per message"));
        }
        let key_id = snapshot.keyring.primary();
        let cipher = Self::cipher(snapshot, key_id, room)?;
        let header = Header {
            key_id,
            nonce: *nonce,
        };
        let (head, body) = out.split_at_mut(HEADER_LEN);
        head.copy_from_slice(&header.to_bytes());
        let (text, tag) = body.split_at_mut(plaintext.len());
        text.copy_from_slice(plaintext);
        let computed = with_aad(head, context, |aad| {
            cipher.aead.seal_in_place(nonce, aad, text)
        });
        match computed {
            Ok(t) => {
                tag.copy_from_slice(&t);
                snapshot.primary_seals.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                zeroize::Zeroize::zeroize(out);
                Err(e)
            }
        }
    }

    /// Opens a binary envelope sealed for `room` with `context`. The
    /// plaintext comes back in a buffer that is wiped when dropped.
    pub fn open<'r>(
        &self,
        room: impl Into<Room<'r>>,
        context: &[u8],
        envelope: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let room = room.into();
        self.open_owned(room, context, Zeroizing::new(envelope.to_vec()))
    }

    /// Opens into `out` (at least [`envelope::opened_len`] bytes); returns
    /// the plaintext length. `out` is written only on success.
    pub fn open_into<'r>(
        &self,
        room: impl Into<Room<'r>>,
        context: &[u8],
        envelope: &[u8],
        out: &mut [u8],
    ) -> Result<usize> {
        let room = room.into();
        Header::parse(envelope)?;
        let len = envelope.len() - envelope::OVERHEAD;
        if out.len() < len {
            return Err(Error::BufferTooSmall { needed: len });
        }
        let plaintext = self.open(room, context, envelope)?;
        out[..len].copy_from_slice(&plaintext);
        Ok(len)
    }

    /// Decodes the text form and opens it.
    pub fn open_text<'r>(
        &self,
        room: impl Into<Room<'r>>,
        context: &[u8],
        text: &str,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let room = room.into();
        self.open_owned(room, context, Zeroizing::new(envelope::decode_text(text)?))
    }

    /// Opens an envelope the sealer already owns a wiped-on-drop copy of,
    /// returning the same buffer cut down to the plaintext.
    fn open_owned(
        &self,
        room: Room<'_>,
        context: &[u8],
        mut work: Zeroizing<Vec<u8>>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let len = self.open_in_place(room, context, &mut work)?;
        work.truncate(len);
        Ok(work)
    }

    /// Opens many envelopes with one keyring snapshot; each item succeeds or
    /// fails on its own.
    pub fn open_batch(&self, items: &[OpenRequest<'_>]) -> Vec<Result<Zeroizing<Vec<u8>>>> {
        items
            .iter()
            .map(|item| self.open(Room::at(item.room, item.epoch), item.context, item.envelope))
            .collect()
    }

    /// The one opening path: decrypts the binary envelope that fills `work`
    /// and moves the plaintext to its front in the same pass; returns the
    /// plaintext length. On failure `work` never holds plaintext: a failed
    /// authentication zeroes it, a malformed header leaves it as it was. For
    /// callers that own the envelope's buffer (and so need no copy of it).
    pub fn open_in_place<'r>(
        &self,
        room: impl Into<Room<'r>>,
        context: &[u8],
        work: &mut [u8],
    ) -> Result<usize> {
        let room = room.into();
        let header = Header::parse(work)?;
        let snapshot = self.current.load();
        Self::open_with(&snapshot, room, context, &header, work)
    }

    /// Opens `work` (whose parsed header is `header`) with `snapshot`'s keys.
    fn open_with(
        snapshot: &Snapshot,
        room: Room<'_>,
        context: &[u8],
        header: &Header,
        work: &mut [u8],
    ) -> Result<usize> {
        let cipher = Self::cipher(snapshot, header.key_id, room)?;
        let head = header.to_bytes();
        with_aad(&head, context, |aad| {
            cipher
                .aead
                .open_within(&header.nonce, aad, work, HEADER_LEN)
        })
    }

    /// Re-seals an envelope under the current primary key without handing
    /// its plaintext to the caller: the envelope is opened (authenticated)
    /// into a buffer that is wiped on drop and sealed again from there, with
    /// the same `room` and `context`, under one keyring snapshot (a rotation
    /// in between cannot mix keys).
    ///
    /// * Errors are exactly those of [`Sealer::open`] for the same input
    ///   (`Malformed`, `UnsupportedVersion`, `UnsupportedAlgorithm`,
    ///   `UnknownKey`, `RetiredKey`, `BadTag`, `InvalidRoom`), and nothing is
    ///   sealed when one occurs.
    /// * An envelope already under the primary is still authenticated (so a
    ///   tampered one is `BadTag`, as with `open`), but it is not sealed
    ///   again: [`Rewrapped::Unchanged`], no new envelope, no nonce spent
    ///   (it is opened into a wiped scratch copy to authenticate it).
    /// * A resealed envelope counts as a seal of the primary key
    ///   ([`Sealer::seal_counts`]).
    pub fn rewrap<'r>(
        &self,
        room: impl Into<Room<'r>>,
        context: &[u8],
        envelope: &[u8],
    ) -> Result<Rewrapped> {
        let room = room.into();
        let snapshot = self.current.load();
        self.rewrap_with(&snapshot, room, context, envelope)
    }

    /// [`Sealer::rewrap`] for the text form (standard base64), as the store
    /// keeps envelopes. A text that does not decode is `BadEncoding`, as
    /// with [`Sealer::open_text`].
    pub fn rewrap_text<'r>(
        &self,
        room: impl Into<Room<'r>>,
        context: &[u8],
        text: &str,
    ) -> Result<Rewrapped<String>> {
        let room = room.into();
        let envelope = Zeroizing::new(envelope::decode_text(text)?);
        Ok(match self.rewrap(room, context, &envelope)? {
            Rewrapped::Unchanged => Rewrapped::Unchanged,
            Rewrapped::Resealed { key_id, envelope } => Rewrapped::Resealed {
                key_id,
                envelope: envelope::encode_text(&envelope),
            },
        })
    }

    /// Rewraps many envelopes with one keyring snapshot, so every resealed
    /// one is under the same primary; each item succeeds or fails on its
    /// own, as in [`Sealer::open_batch`].
    pub fn rewrap_batch(&self, items: &[RewrapRequest<'_>]) -> Vec<Result<Rewrapped>> {
        let snapshot = self.current.load();
        items
            .iter()
            .map(|item| {
                self.rewrap_with(
                    &snapshot,
                    Room::at(item.room, item.epoch),
                    item.context,
                    item.envelope,
                )
            })
            .collect()
    }

    fn rewrap_with(
        &self,
        snapshot: &Snapshot,
        room: Room<'_>,
        context: &[u8],
        envelope: &[u8],
    ) -> Result<Rewrapped> {
        let header = Header::parse(envelope)?;
        let mut work = Zeroizing::new(envelope.to_vec());
        let len = Self::open_with(snapshot, room, context, &header, &mut work)?;
        let primary = snapshot.keyring.primary();
        if header.key_id == primary {
            return Ok(Rewrapped::Unchanged);
        }
        let envelope = self.seal_to_vec(snapshot, room, context, &work[..len])?;
        Ok(Rewrapped::Resealed {
            key_id: primary,
            envelope,
        })
    }

    /// Seals with a caller-chosen nonce, only for making fixed test vectors.
    #[cfg(test)]
    pub(crate) fn seal_with_nonce<'r>(
        &self,
        room: impl Into<Room<'r>>,
        context: &[u8],
        plaintext: &[u8],
        nonce: &[u8; NONCE_LEN],
    ) -> Result<Vec<u8>> {
        let room = room.into();
        let snapshot = self.current.load();
        let mut out = vec![0u8; sealed_len(plaintext.len())?];
        self.seal_with(&snapshot, room, context, plaintext, nonce, &mut out)?;
        Ok(out)
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("keyring", &self.current.load().keyring)
            .finish_non_exhaustive()
    }
}

fn sealed_len(plaintext_len: usize) -> Result<usize> {
    // A `match`, not `ok_or`: that builds and drops an `Error` on every
    // call, which showed in a batch's profile (3 % of a 256-byte seal).
    match envelope::sealed_len(plaintext_len) {
        Some(len) => Ok(len),
        None => Err(Error::TooLarge("plaintext length overflows")),
    }
}

/// Builds an envelope in a new vector without zero-filling it first:
/// header, then the plaintext encrypted in place, then the tag. Does not
/// count the seal; the caller does.
fn seal_vec(
    cipher: &RoomCipher,
    key_id: u32,
    nonce: &[u8; NONCE_LEN],
    context: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    // `seal_append` reserves the envelope's length: from empty, exactly that.
    let mut out = Vec::new();
    seal_append(cipher, key_id, nonce, context, plaintext, &mut out)?;
    Ok(out)
}

/// Appends an envelope to `out` (see [`seal_vec`]). On failure `out` is
/// as it was, and the plaintext copied into it is wiped first.
fn seal_append(
    cipher: &RoomCipher,
    key_id: u32,
    nonce: &[u8; NONCE_LEN],
    context: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    let header = Header {
        key_id,
        nonce: *nonce,
    }
    .to_bytes();
    let start = out.len();
    out.reserve(sealed_len(plaintext.len())?);
    out.extend_from_slice(&header);
    out.extend_from_slice(plaintext);
    let tag = with_aad(&header, context, |aad| {
        cipher
            .aead
            .seal_in_place(nonce, aad, &mut out[start + HEADER_LEN..])
    });
    match tag {
        Ok(tag) => {
            out.extend_from_slice(&tag);
            Ok(())
        }
        Err(e) => {
            zeroize::Zeroize::zeroize(&mut out[start..]);
            out.truncate(start);
            Err(e)
        }
    }
}

/// Runs `f` with `header ‖ context` as one slice, on the stack when short.
fn with_aad<T>(header: &[u8], context: &[u8], f: impl FnOnce(&[u8]) -> T) -> T {
    const STACK: usize = 256;
    let len = header.len() + context.len();
    if len <= STACK {
        // Not zero-filled first: only the `len` bytes written below are read.
        let mut buf = [MaybeUninit::<u8>::uninit(); STACK];
        let (head, rest) = buf.split_at_mut(header.len());
        head.write_copy_of_slice(header);
        rest[..context.len()].write_copy_of_slice(context);
        // SAFETY: the first `len` bytes were written just above.
        f(unsafe { buf[..len].assume_init_ref() })
    } else {
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(header);
        buf.extend_from_slice(context);
        f(&buf)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave their data inconsistent
    // (a counter map, a unit), so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Sealer>();
    let _ = TAG_LEN;
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn sealer() -> Sealer {
        Sealer::new(Keyring::generate())
    }

    /// A batch item for `room` at epoch 0 with context `c`.
    fn item<'a>(room: &'a str, plaintext: &'a [u8]) -> SealRequest<'a> {
        SealRequest {
            room,
            epoch: 0,
            context: b"c",
            plaintext,
        }
    }

    #[test]
    fn a_seal_request_shows_the_plaintexts_length_not_its_bytes() {
        let shown = format!("{:?}", item("lobby", b"attack at dawn"));
        assert!(!shown.contains("attack"), "{shown}");
        // Nor as the byte list a derived Debug prints.
        assert!(!shown.contains("97, 116, 116"), "{shown}");
        assert!(
            shown.contains("plaintext_len: 14") && shown.contains("lobby"),
            "{shown}"
        );
    }

    #[test]
    fn seal_open_round_trip_in_all_forms() {
        let s = sealer();
        let env = s.seal("lobby", b"ctx", b"hello").unwrap();
        assert_eq!(env.len(), 5 + envelope::OVERHEAD);
        assert_eq!(&*s.open("lobby", b"ctx", &env).unwrap(), b"hello");
        let text = s.seal_text("lobby", b"", b"hi").unwrap();
        assert_eq!(&*s.open_text("lobby", b"", &text).unwrap(), b"hi");

        let mut buf = [0u8; 64];
        let n = s.seal_into("r", b"c", b"into", &mut buf).unwrap();
        let mut plain = [0u8; 8];
        let m = s.open_into("r", b"c", &buf[..n], &mut plain).unwrap();
        assert_eq!(&plain[..m], b"into");
    }

    #[test]
    fn wrong_room_or_context_fails_and_writes_nothing() {
        let s = sealer();
        let env = s.seal("a", b"ctx", b"secret").unwrap();
        assert_eq!(
            s.open("b", b"ctx", &env).unwrap_err().kind(),
            ErrorKind::BadTag
        );
        assert_eq!(
            s.open("a", b"ctX", &env).unwrap_err().kind(),
            ErrorKind::BadTag
        );
        let mut out = [0xAAu8; 16];
        assert!(s.open_into("b", b"ctx", &env, &mut out).is_err());
        assert_eq!(out, [0xAA; 16]);
    }

    #[test]
    fn small_buffers_are_reported_with_the_size_needed() {
        let s = sealer();
        let mut small = [0u8; 10];
        assert!(matches!(
            s.seal_into("r", b"", b"abc", &mut small),
            Err(Error::BufferTooSmall { needed: 37 })
        ));
        assert_eq!(small, [0; 10]);
        let env = s.seal("r", b"", b"abc").unwrap();
        assert!(matches!(
            s.open_into("r", b"", &env, &mut [0u8; 2]),
            Err(Error::BufferTooSmall { needed: 3 })
        ));
    }

    #[test]
    fn rotation_keeps_old_envelopes_open_and_counts_seals() {
        let s = sealer();
        let old = s.seal("r", b"", b"one").unwrap();
        s.seal("r", b"", b"two").unwrap();
        let kr = s.rotate().unwrap();
        assert_eq!(kr.primary(), 2);
        let new = s.seal("r", b"", b"three").unwrap();
        assert_eq!(Header::parse(&new).unwrap().key_id, 2);
        assert_eq!(&*s.open("r", b"", &old).unwrap(), b"one");
        assert_eq!(s.seal_counts(), vec![(1, 2), (2, 1)]);
        let ids: Vec<_> = s.room_keys("r").unwrap().iter().map(|k| k.key_id).collect();
        assert_eq!(ids, vec![1, 2]);

        let mut retired = s.keyring();
        retired.set_min_decrypt(2).unwrap();
        s.replace_keyring(retired);
        assert_eq!(
            s.open("r", b"", &old).unwrap_err().kind(),
            ErrorKind::RetiredKey
        );
        assert_eq!(s.room_keys("r").unwrap().len(), 1);
    }

    #[test]
    fn room_keys_match_the_keyring_derivation() {
        let s = sealer();
        let kr = s.keyring();
        let rk = s.room_key("lobby", 1).unwrap();
        assert_eq!(rk.key.expose(), kr.room_key(1, "lobby").unwrap().expose());
        assert_eq!(
            s.room_key("lobby", 2).unwrap_err().kind(),
            ErrorKind::UnknownKey
        );
    }

    #[test]
    fn invalid_rooms_are_refused() {
        let s = sealer();
        assert_eq!(
            s.seal("a\0b", b"", b"x").unwrap_err().kind(),
            ErrorKind::InvalidRoom
        );
        assert_eq!(
            s.seal(&"x".repeat(65), b"", b"x").unwrap_err().kind(),
            ErrorKind::InvalidRoom
        );
    }

    #[test]
    fn batches() {
        let s = sealer();
        let reqs = [
            SealRequest {
                room: "a",
                epoch: 0,
                context: b"1",
                plaintext: b"one",
            },
            SealRequest {
                room: "b",
                epoch: 0,
                context: b"2",
                plaintext: b"two",
            },
        ];
        let envs = s.seal_batch(&reqs).unwrap();
        let opens = s.open_batch(&[
            OpenRequest {
                room: "a",
                epoch: 0,
                context: b"1",
                envelope: &envs[0],
            },
            OpenRequest {
                room: "a",
                epoch: 0,
                context: b"2",
                envelope: &envs[1],
            },
            OpenRequest {
                room: "b",
                epoch: 0,
                context: b"2",
                envelope: &envs[1],
            },
        ]);
        assert_eq!(&**opens[0].as_ref().unwrap(), b"one");
        assert_eq!(opens[1].as_ref().unwrap_err().kind(), ErrorKind::BadTag);
        assert_eq!(&**opens[2].as_ref().unwrap(), b"two");
        let bad = [SealRequest {
            room: "\n",
            epoch: 0,
            context: b"",
            plaintext: b"",
        }];
        assert!(s.seal_batch(&bad).is_err());
    }

    #[test]
    fn two_sealers_and_two_epochs_on_one_thread_keep_their_own_keys() {
        // Two sealers in one process (two keyrings, both with key id 1) and
        // two epochs of one room, used in turn on one thread, each keep
        // their own key.
        let (a, b) = (sealer(), sealer());
        for _ in 0..3 {
            let from_a = a.seal("lobby", b"", b"x").unwrap();
            let from_b = b.seal("lobby", b"", b"x").unwrap();
            assert_eq!(&*a.open("lobby", b"", &from_a).unwrap(), b"x");
            assert_eq!(&*b.open("lobby", b"", &from_b).unwrap(), b"x");
            assert_eq!(
                b.open("lobby", b"", &from_a).unwrap_err().kind(),
                ErrorKind::BadTag
            );
            let later = a.seal(Room::at("lobby", 1), b"", b"y").unwrap();
            assert_eq!(
                a.open("lobby", b"", &later).unwrap_err().kind(),
                ErrorKind::BadTag
            );
            assert_eq!(&*a.open(Room::at("lobby", 1), b"", &later).unwrap(), b"y");
        }
        // A replaced keyring is a new snapshot: its seals use its own key.
        let replacement = Keyring::generate();
        let probe = Sealer::new(replacement.clone());
        a.seal("lobby", b"", b"x").unwrap();
        a.replace_keyring(replacement);
        let after = a.seal("lobby", b"", b"z").unwrap();
        assert_eq!(&*probe.open("lobby", b"", &after).unwrap(), b"z");
    }

    #[test]
    fn a_batch_seals_each_room_with_its_own_key_and_counts_every_seal() {
        let s = sealer();
        let reqs = [
            item("a", &b"1"[..]),
            item("a", b"2"),
            item("b", b"3"),
            item("a", b"4"),
        ];
        let envs = s.seal_batch(&reqs).unwrap();
        for (req, env) in reqs.iter().zip(&envs) {
            assert_eq!(&*s.open(req.room, b"c", env).unwrap(), req.plaintext);
            let other = if req.room == "a" { "b" } else { "a" };
            assert_eq!(
                s.open(other, b"c", env).unwrap_err().kind(),
                ErrorKind::BadTag
            );
        }
        let headers: std::collections::HashSet<_> =
            envs.iter().map(|e| e[..HEADER_LEN].to_vec()).collect();
        assert_eq!(headers.len(), 4, "every envelope has its own nonce");
        assert_eq!(s.seal_counts(), vec![(1, 4)]);
        // More items than one draw of nonces, then a bad one: the batch
        // fails, and the seals made before it still count (their nonces
        // were spent).
        let mut long: Vec<_> = (0..40).map(|_| item("a", b"x")).collect();
        long.push(item("\n", b"x"));
        assert_eq!(
            s.seal_batch(&long).unwrap_err().kind(),
            ErrorKind::InvalidRoom
        );
        assert_eq!(s.seal_counts(), vec![(1, 44)]);
        long.pop();
        let sealed = s.seal_batch(&long).unwrap();
        let nonces: std::collections::HashSet<_> =
            sealed.iter().map(|e| e[6..18].to_vec()).collect();
        assert_eq!(nonces.len(), 40);
    }

    #[test]
    fn a_packed_batch_holds_the_same_envelopes_back_to_back() {
        let s = sealer();
        let reqs: Vec<_> = (0..70)
            .map(|i| item(if i % 3 == 0 { "b" } else { "a" }, &b"some bytes"[..i % 11]))
            .collect();
        let packed = s.seal_batch_packed(&reqs).unwrap();
        assert_eq!(packed.len(), reqs.len());
        let mut nonces = std::collections::HashSet::new();
        for (req, env) in reqs.iter().zip(packed.iter()) {
            assert_eq!(env.len(), req.plaintext.len() + envelope::OVERHEAD);
            assert_eq!(&*s.open(req.room, b"c", env).unwrap(), req.plaintext);
            assert!(nonces.insert(env[6..18].to_vec()));
        }
        assert_eq!(packed.get(69), packed.iter().last());
        assert_eq!(packed.get(70), None);
        assert_eq!(s.seal_counts(), vec![(1, 70)]);
        assert!(s.seal_batch_packed(&[]).unwrap().is_empty());
        // A bad item fails the batch; the seals before it still count.
        let bad = [item("a", b"x"), item("\n", b"x"), item("a", b"x")];
        assert_eq!(
            s.seal_batch_packed(&bad).unwrap_err().kind(),
            ErrorKind::InvalidRoom
        );
        assert_eq!(s.seal_counts(), vec![(1, 71)]);
    }

    #[test]
    fn the_cache_is_bounded() {
        let s = Sealer::with_cache_capacity(Keyring::generate(), 16);
        for i in 0..500 {
            let env = s.seal(&format!("room-{i}"), b"", b"x").unwrap();
            assert_eq!(&*s.open(&format!("room-{i}"), b"", &env).unwrap(), b"x");
        }
        assert!(
            s.current.load().cache.len() <= 32,
            "cache grew to {}",
            s.current.load().cache.len()
        );
    }

    #[test]
    fn concurrent_seal_and_rotate() {
        let s = Arc::new(sealer());
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let ctx = format!("{t}-{i}");
                        let env = s.seal("r", ctx.as_bytes(), ctx.as_bytes()).unwrap();
                        assert_eq!(&*s.open("r", ctx.as_bytes(), &env).unwrap(), ctx.as_bytes());
                    }
                })
            })
            .collect();
        for _ in 0..5 {
            s.rotate().unwrap();
        }
        for w in workers {
            w.join().unwrap();
        }
        let total: u64 = s.seal_counts().iter().map(|(_, n)| n).sum();
        assert_eq!(total, 2000);
        assert_eq!(s.primary_key_id(), 6);
    }
}
