//! Unit tests of the shard index layout.

use super::*;

fn inline(b: &'static [u8]) -> Option<ChunkRef> {
    Some(ChunkRef::Inline(Bytes::from_static(b)))
}

fn native(object: u8, offset: u64) -> Option<ChunkRef> {
    Some(ChunkRef::Native {
        object: ChunkObjectId::of_bytes(&[object]),
        offset,
        length: 10,
    })
}

fn listed(index: &ShardIndex) -> Vec<ManifestEntry> {
    index.iter().map(|(c, r)| (c.to_vec(), Some(r))).collect()
}

#[test]
fn compact_refs_take_24_bytes() {
    assert_eq!(std::mem::size_of::<CompactRef>(), 24);
}

#[test]
fn overlay_replaces_deletes_and_inserts() {
    let base = ShardIndex::from_base(vec![
        (vec![0], inline(b"a")),
        (vec![2], inline(b"b")),
        (vec![4], inline(b"c")),
    ])
    .unwrap();
    let delta = vec![
        (vec![1], inline(b"x")),
        (vec![2], None),
        (vec![4], inline(b"y")),
        (vec![5], inline(b"z")),
    ];
    let merged = ShardIndex::overlay(Some(&base), &delta).unwrap();
    assert_eq!(
        listed(&merged),
        vec![
            (vec![0], inline(b"a")),
            (vec![1], inline(b"x")),
            (vec![4], inline(b"y")),
            (vec![5], inline(b"z")),
        ]
    );
    assert_eq!(merged.get(&[2]), None);
    assert!(!merged.contains(&[2]));
    // The base is unchanged.
    assert_eq!(base.get(&[2]), inline(b"b"));
    assert_eq!(base.get(&[4]), inline(b"c"));
    assert_eq!(ShardIndex::overlay(None, &delta).unwrap().len(), 3);
}

#[test]
fn overlay_of_tombstones_only_keeps_the_rest_of_the_base() {
    let base = ShardIndex::from_base(vec![
        (vec![0, 1], native(1, 0)),
        (vec![0, 2], inline(b"b")),
        (vec![1, 0], native(2, 10)),
    ])
    .unwrap();
    let merged =
        ShardIndex::overlay(Some(&base), &[(vec![0, 2], None), (vec![3, 3], None)]).unwrap();
    assert_eq!(
        listed(&merged),
        vec![(vec![0, 1], native(1, 0)), (vec![1, 0], native(2, 10))]
    );
    let all_gone =
        ShardIndex::overlay(Some(&merged), &[(vec![0, 1], None), (vec![1, 0], None)]).unwrap();
    assert!(all_gone.is_empty());
    assert_eq!(all_gone.get(&[0, 1]), None);
}

#[test]
fn native_references_share_an_object_dictionary() {
    let base = ShardIndex::from_base(vec![
        (vec![0], native(1, 0)),
        (vec![1], native(1, 10)),
        (vec![2], native(2, 0)),
        (vec![3], native(1, 20)),
    ])
    .unwrap();
    assert_eq!(base.objects.len(), 2);
    // The merged index keeps the base's slots and adds each new object of the delta once
    // (a delta object already in the base may take a second slot).
    let merged = ShardIndex::overlay(
        Some(&base),
        &[
            (vec![1], native(2, 10)),
            (vec![4], native(3, 0)),
            (vec![5], native(4, 0)),
            (vec![6], native(3, 10)),
        ],
    )
    .unwrap();
    assert_eq!(merged.objects[..2], base.objects[..]);
    assert_eq!(merged.objects.len(), 5);
    assert_eq!(merged.get(&[0]), native(1, 0));
    assert_eq!(merged.get(&[1]), native(2, 10));
    assert_eq!(merged.get(&[2]), native(2, 0));
    assert_eq!(merged.get(&[4]), native(3, 0));
    assert_eq!(merged.get(&[5]), native(4, 0));
    assert_eq!(merged.get(&[6]), native(3, 10));
}

#[test]
fn lookups_follow_the_lexicographic_order() {
    let coords: Vec<Vec<u64>> = vec![
        vec![0, 0, 5],
        vec![0, 1, 0],
        vec![0, 1, u64::MAX],
        vec![2, 0, 0],
        vec![u64::MAX, 0, 1],
    ];
    let index = ShardIndex::from_base(
        coords
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), native(0, i as u64)))
            .collect(),
    )
    .unwrap();
    assert_eq!(index.ndim(), 3);
    assert_eq!(index.coords().collect::<Vec<_>>(), coords);
    for (i, c) in coords.iter().enumerate() {
        assert_eq!(index.get(c), native(0, i as u64), "{c:?}");
    }
    for absent in [
        &[0, 0, 0][..],
        &[0, 0, 6],
        &[1, 0, 0],
        &[u64::MAX, 0, 0],
        &[u64::MAX; 3],
        &[0, 1],
        &[0, 1, 0, 0],
        &[],
    ] {
        assert_eq!(index.get(absent), None, "{absent:?}");
        assert!(!index.contains(absent));
    }
}

#[test]
fn one_dimensional_lookups_of_absent_coordinates() {
    let index =
        ShardIndex::from_base((0..100u64).map(|i| (vec![i * 2], native(0, i))).collect()).unwrap();
    assert_eq!(index.get(&[84]), native(0, 42));
    for absent in [1, 83, 85, 199, 200, u64::MAX] {
        assert_eq!(index.get(&[absent]), None, "{absent}");
    }
    assert_eq!(ShardIndex::default().get(&[0]), None);
}

#[test]
fn full_boxes_are_searched_by_offset() {
    let full: Vec<ManifestEntry> = (2..5u64)
        .flat_map(|i| (5..9u64).map(move |j| (vec![i, j], native(0, i * 100 + j))))
        .collect();
    let index = ShardIndex::from_base(full.clone()).unwrap();
    assert_eq!(
        index.dense,
        Some(DenseBox {
            lo: vec![2, 5],
            extent: vec![3, 4]
        })
    );
    for (c, r) in &full {
        assert_eq!(&index.get(c), r, "{c:?}");
    }
    for absent in [[1, 5], [2, 4], [2, 9], [5, 5], [0, 0], [u64::MAX, u64::MAX]] {
        assert_eq!(index.get(&absent), None, "{absent:?}");
    }
    // A hole makes the box sparse; lookups fall back to binary search.
    let holed = ShardIndex::overlay(Some(&index), &[(vec![3, 6], None)]).unwrap();
    assert_eq!(holed.dense, None);
    assert_eq!(holed.get(&[3, 6]), None);
    assert_eq!(holed.get(&[3, 7]), native(0, 307));
    let refilled = ShardIndex::overlay(Some(&holed), &[(vec![3, 6], native(1, 0))]).unwrap();
    assert!(refilled.dense.is_some());
    assert_eq!(refilled.get(&[3, 6]), native(1, 0));
    let grown = ShardIndex::overlay(Some(&index), &[(vec![5, 5], native(1, 0))]).unwrap();
    assert_eq!(grown.dense, None);
    assert_eq!(grown.get(&[5, 5]), native(1, 0));
    assert_eq!(grown.get(&[4, 8]), native(0, 408));
}

#[test]
fn unsorted_entries_never_answer_for_another_coordinate() {
    // Only a damaged manifest is unsorted; its box looks full, but offsets are checked.
    let index =
        ShardIndex::from_base(vec![(vec![1], native(0, 1)), (vec![0], native(0, 0))]).unwrap();
    assert!(index.dense.is_some());
    assert_ne!(index.get(&[0]), native(0, 1));
    assert_ne!(index.get(&[1]), native(0, 0));
}

#[test]
fn zero_dimensional_arrays_have_empty_coordinates() {
    let index = ShardIndex::from_base(vec![(vec![], inline(b"scalar"))]).unwrap();
    assert_eq!(index.ndim(), 0);
    assert!(index.dense.is_some());
    assert_eq!(index.len(), 1);
    assert_eq!(index.get(&[]), inline(b"scalar"));
    assert_eq!(index.get(&[0]), None);
    assert_eq!(index.coords().collect::<Vec<_>>(), vec![&[] as &[u64]]);
    let replaced = ShardIndex::overlay(Some(&index), &[(vec![], native(1, 0))]).unwrap();
    assert_eq!(replaced.get(&[]), native(1, 0));
    let deleted = ShardIndex::overlay(Some(&index), &[(vec![], None)]).unwrap();
    assert!(deleted.is_empty());
    assert_eq!(deleted.dense, None);
    assert_eq!(deleted.get(&[]), None);
}

#[test]
fn entries_of_another_rank_are_ignored() {
    let base = ShardIndex::from_base(vec![(vec![1], inline(b"a"))]).unwrap();
    let merged =
        ShardIndex::overlay(Some(&base), &[(vec![0, 0], inline(b"x")), (vec![1], None)]).unwrap();
    assert!(merged.is_empty());
    assert_eq!(merged.ndim(), 1);
}

#[test]
fn decoding_columns_matches_building_from_entries() {
    let entries: Vec<ManifestEntry> = vec![
        (vec![0, 0], inline(b"abc")),
        (vec![0, 1], native(1, 24)),
        (vec![0, 2], inline(b"")),
        (vec![1, 0], native(2, 24)),
        (vec![1, 1], inline(b"de")),
        (vec![1, 2], native(1, 34)),
    ];
    let columns = ManifestColumns::encode(&entries).unwrap();
    let decoded = ShardIndex::from_columns(columns).unwrap();
    assert_eq!(listed(&decoded), entries);
    assert_eq!(decoded.get(&[1, 1]), inline(b"de"));
    let built = ShardIndex::from_base(entries.clone()).unwrap();
    assert_eq!(built.coords, decoded.coords);
    assert_eq!(built.refs, decoded.refs);
    assert_eq!(built.objects, decoded.objects);

    // A delta's tombstones are dropped, and inline chunks survive overlays.
    let delta =
        ManifestColumns::encode(&[(vec![0, 0], None), (vec![0, 5], inline(b"new"))]).unwrap();
    let delta = ShardIndex::from_columns(delta).unwrap();
    assert_eq!(listed(&delta), vec![(vec![0, 5], inline(b"new"))]);
    let merged = ShardIndex::overlay(Some(&decoded), &[(vec![0, 1], inline(b"z"))]).unwrap();
    assert_eq!(merged.get(&[0, 0]), inline(b"abc"));
    assert_eq!(merged.get(&[0, 1]), inline(b"z"));
    assert_eq!(merged.get(&[1, 1]), inline(b"de"));
}

#[test]
fn corrupt_columns_are_rejected() {
    let mut columns = ManifestColumns::encode(&[(vec![3], native(1, 0))]).unwrap();
    columns.objects.clear();
    assert!(ShardIndex::from_columns(columns).is_err());
}

#[test]
fn approx_bytes_counts_coordinates_references_and_inline_data() {
    let index = ShardIndex::from_base(
        (0..1000u64)
            .map(|i| (vec![i, 0], inline(b"0123456789")))
            .collect(),
    )
    .unwrap();
    let bytes = index.approx_bytes();
    assert!(bytes >= 1000 * (16 + 24 + 10), "{bytes}");
    assert!(bytes < 1000 * (16 + 24 + 10) + 4096, "{bytes}");
}
