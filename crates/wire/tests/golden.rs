//! Golden tests of the wire contract against hand-written replies in the shapes op-node and op-geth
//! send (see `tests/fixtures/`).
//!
//! The fixtures are invented but follow the exact JSON shapes of the reference: op-node refs carry
//! plain JSON integers and camelCase keys inside snake_case `optimism_syncStatus` keys; op-geth
//! headers carry hex quantities and many fields the coordinator never reads.

use alloy_primitives::address;
use opc_wire::{
    B256, BlockHeader, BlockId, BlockNumberOrTag, L1BlockRef, L2BlockRef, SyncStatus, SyncStatusShape,
    op_node_errors::{
        self, APPLICATION_ERROR_CODE, AdminError, METHOD_NOT_FOUND_CODE, hash_mismatch, method_not_available,
        mismatch_head, no_prestate,
    },
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const SYNC_STATUS_2023: &str = include_str!("fixtures/sync_status_2023.json");
const SYNC_STATUS_EARLY_2024: &str = include_str!("fixtures/sync_status_early_2024.json");
const SYNC_STATUS_LATE_2024: &str = include_str!("fixtures/sync_status_late_2024.json");
const SYNC_STATUS_UNINITIALISED: &str = include_str!("fixtures/sync_status_uninitialised.json");
const SYNC_STATUS_UNKNOWN_KEYS: &str = include_str!("fixtures/sync_status_unknown_keys.json");
const SYNC_STATUS_MISSING_KEYS: &str = include_str!("fixtures/sync_status_missing_keys.json");
const SYNC_STATUS_NULL_REFS: &str = include_str!("fixtures/sync_status_null_refs.json");
const SYNC_STATUS_HEX_NUMBERS: &str = include_str!("fixtures/sync_status_hex_numbers.json");
const OP_GETH_BLOCK_LATEST: &str = include_str!("fixtures/op_geth_block_latest.json");
const OP_GETH_BLOCK_NULL: &str = include_str!("fixtures/op_geth_block_null.json");
const OP_GETH_BLOCK_PENDING: &str = include_str!("fixtures/op_geth_block_pending.json");

/// Keys every version of `optimism_syncStatus` sends.
const COMMON_KEYS: [&str; 8] = [
    "current_l1",
    "current_l1_finalized",
    "head_l1",
    "safe_l1",
    "finalized_l1",
    "unsafe_l2",
    "safe_l2",
    "finalized_l2",
];

const ALL_SHAPES: [SyncStatusShape; 3] =
    [SyncStatusShape::V2023, SyncStatusShape::Early2024, SyncStatusShape::Late2024];

/// The exact key set a version sends, sorted.
fn keys_of_shape(shape: SyncStatusShape) -> Vec<&'static str> {
    let extra: &[&str] = match shape {
        SyncStatusShape::V2023 => &["queued_unsafe_l2", "engine_sync_target"],
        SyncStatusShape::Early2024 => &["pending_safe_l2"],
        SyncStatusShape::Late2024 => &["pending_safe_l2", "cross_unsafe_l2", "local_safe_l2"],
    };
    let mut keys: Vec<&str> = COMMON_KEYS.iter().chain(extra).copied().collect();
    keys.sort_unstable();
    keys
}

/// The sorted keys of a JSON object.
fn sorted_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().expect("a JSON object").keys().cloned().collect();
    keys.sort_unstable();
    keys
}

fn decode_status(json: &str) -> SyncStatus {
    serde_json::from_str(json).expect("fixture decodes into SyncStatus")
}

fn parse_value(json: &str) -> Value {
    serde_json::from_str(json).expect("fixture is valid JSON")
}

fn hash(text: &str) -> B256 {
    text.parse().expect("a 32-byte hex hash")
}

fn l1(block_hash: &str, number: u64, parent_hash: &str, timestamp: u64) -> L1BlockRef {
    L1BlockRef { hash: hash(block_hash), number, parent_hash: hash(parent_hash), timestamp }
}

fn l2(
    block_hash: &str,
    number: u64,
    parent_hash: &str,
    timestamp: u64,
    origin: (&str, u64),
    sequence_number: u64,
) -> L2BlockRef {
    L2BlockRef {
        hash: hash(block_hash),
        number,
        parent_hash: hash(parent_hash),
        timestamp,
        l1_origin: BlockId { hash: hash(origin.0), number: origin.1 },
        sequence_number,
    }
}

/// `status` without the fields that `shape` does not carry on the wire, and with the default shape.
fn project_to_shape(status: &SyncStatus, shape: SyncStatusShape) -> SyncStatus {
    let mut projected = SyncStatus { shape: SyncStatusShape::default(), ..status.clone() };
    let zero = L2BlockRef::default();
    match shape {
        SyncStatusShape::V2023 => {
            projected.pending_safe_l2 = zero;
            projected.cross_unsafe_l2 = zero;
            projected.local_safe_l2 = zero;
        }
        SyncStatusShape::Early2024 => {
            projected.cross_unsafe_l2 = zero;
            projected.local_safe_l2 = zero;
            projected.queued_unsafe_l2 = zero;
            projected.engine_sync_target = zero;
        }
        SyncStatusShape::Late2024 => {
            projected.queued_unsafe_l2 = zero;
            projected.engine_sync_target = zero;
        }
    }
    projected
}

fn without_shape(status: SyncStatus) -> SyncStatus {
    SyncStatus { shape: SyncStatusShape::default(), ..status }
}

// ---------------------------------------------------------------------------------------------
// Expected values of the version fixtures, written out by hand.
// ---------------------------------------------------------------------------------------------

fn expected_2023() -> SyncStatus {
    let finalized_l1 = l1(
        "0x597aa54b0744e09b308a52c0017dca1ab52482ccd9cd284888e1fb7969cecab6",
        17_612_280,
        "0x62faef64ac9ae02ddef75cfdddbc8335ed6febb889b17b2e6626c654ceebdfd2",
        1_688_140_031,
    );
    let unsafe_l2 = l2(
        "0x020793f659ee136421ee81d65f975853482f96e886e6c5139b177ecda9bd9fbb",
        106_123_456,
        "0xa33623a1e50bbfe21fc488b8e085a40513d850df0691a0692ac57cc4f454daf2",
        1_688_140_869,
        ("0x1c804f3ec624a1abc940cf6eb020d302d3eac361405867a3bcc8a6e1b5474e36", 17_612_347),
        3,
    );
    SyncStatus {
        current_l1: l1(
            "0x19868e963ea6911b50501d928d62d23446ec08345102b2fa181c3da50da127fe",
            17_612_345,
            "0x1c4ef58c552f403e5eea7d3e07a1cabf9211efb8e889a88536e8482f7803bf89",
            1_688_140_811,
        ),
        current_l1_finalized: finalized_l1,
        head_l1: l1(
            "0x43d7179c5b654b7e0440559c121604c5dc7c1158ade60b349c9a32d440fe705c",
            17_612_350,
            "0x34bf485adcabbcb8a7b5549f76436ee37775b0678db0bc2080cc40f7fecffd73",
            1_688_140_871,
        ),
        safe_l1: l1(
            "0xe129db71dfee46adbe6f012cf9c440fa188b55d1a9178d5c31a51446dc76300e",
            17_612_312,
            "0x91f0b8294c0ec9a0473e6e1a6579ea4bd9b35f0fcbaeac92d6dba157eedeafbd",
            1_688_140_415,
        ),
        finalized_l1,
        unsafe_l2,
        safe_l2: l2(
            "0x156cc24312c2f3fecb9a3640ab4804c6623b0b17db830222d9e491ab79b18cca",
            106_123_100,
            "0x2299b5ea48bbd566c273899b5b9b4de9830313526ac15d7e9a5c6b16bfc488de",
            1_688_140_157,
            ("0x18f949e2710484e7df5635027d338a294332638aba0f757ff7eee279b887351d", 17_612_290),
            5,
        ),
        finalized_l2: l2(
            "0x596c4b8a482c521b0650ce5099a2b749d4a45909452bbf683e7fb4bece614be0",
            106_122_950,
            "0x08b374b9f1321a9d849aabaceb808e3c5a2c260544d2c1e34694eeb01c0e5dcc",
            1_688_139_857,
            ("0xae54e054c201bf9cd2c5fb4902aaa23abf20749855490fb26f430175d0db4d86", 17_612_265),
            0,
        ),
        pending_safe_l2: L2BlockRef::default(),
        cross_unsafe_l2: L2BlockRef::default(),
        local_safe_l2: L2BlockRef::default(),
        queued_unsafe_l2: l2(
            "0x78d27a016cc6a0a219a4c76921e1abe1ef4e1c775dd5b46e82136381b6f540ad",
            106_123_460,
            "0x5f18188d87b44489a39fc882cec24b770fa6a4c1d3d292e08e16628c0dd3e51d",
            1_688_140_877,
            ("0x1c804f3ec624a1abc940cf6eb020d302d3eac361405867a3bcc8a6e1b5474e36", 17_612_347),
            7,
        ),
        engine_sync_target: unsafe_l2,
        shape: SyncStatusShape::default(),
    }
}

fn expected_early_2024() -> SyncStatus {
    let finalized_l1 = l1(
        "0xc281c7f581766e572ce85be6a65031944f607a8657987579ebaed36c168589b1",
        19_234_500,
        "0xf838d586a3c82a5592716b0ce525ca6f51d9df0b3192de8d3837a83b74e2c5a4",
        1_707_911_543,
    );
    SyncStatus {
        current_l1: l1(
            "0xbb9e20e0dd2d79f0d9ca738784731ec7d7ad47ac2d1bcaea866db1e2a0c0819a",
            19_234_567,
            "0x0feb7aa266155342a3d6cff0c9007d007952f4b3eb5142e66dd4f405d0c8e28e",
            1_707_912_347,
        ),
        current_l1_finalized: finalized_l1,
        head_l1: l1(
            "0xca0a8c9d0540e780be15d391de47b60d2621e38160e0cb1966e2fcece88dd67d",
            19_234_570,
            "0x1e0fa3ebd5659f058c48981a992c6d576438346173963e7757c3866ff6f415a3",
            1_707_912_383,
        ),
        safe_l1: l1(
            "0x44eaeaad3ca3c54e60489f4acbe79209ce00053b0d044a3a6f291fff5d2bf25d",
            19_234_532,
            "0x3299ce9edbe5790d5c41609d71ea0feaf0e23f41ff229674283d4e26f69c148a",
            1_707_911_927,
        ),
        finalized_l1,
        unsafe_l2: l2(
            "0x826e7c4acd6fbcb95fa2b34f8ee64e8bc512a05eaac649c2a6a720a253572ff9",
            116_234_567,
            "0x0bc22189a142ce16cd2c266beee8c5b69938910753383f017769d2a14c9148f6",
            1_707_912_381,
            ("0x2b719d99bd58d86f5f2b54d511de518c7b156e1b35a690e9658f35ca1476a371", 19_234_568),
            4,
        ),
        safe_l2: l2(
            "0xb6286eabcc46fdadbadc84d6750bd3d0fa4762f3ea2fbc126291f427990692e9",
            116_234_100,
            "0x5096a9ae1d7cc7b4fe287c4a9d75c59fc705069baf8ae461e626f335fe2ae84c",
            1_707_911_447,
            ("0x0dfedf24bd1adc8d11802e0f68c42178348f1da0a4d49cf88043857fe507f36a", 19_234_490),
            2,
        ),
        finalized_l2: l2(
            "0x1e528062343d4e3fcbc2ede913bf6e180d239872a0c96e254be599d8400a7c5e",
            116_233_900,
            "0x4dec2b710e178c748a68bf849d6c61cbf9a7a1496ab400224113735f10fa13b0",
            1_707_911_047,
            ("0x18b4f2d885257dffe0b9876a51cb1d8e361a706eb81fd2b44d60bafed8644904", 19_234_457),
            1,
        ),
        pending_safe_l2: l2(
            "0x84f00800e4b68046f660fdb3593699588607e683ef5f4025b444e621bf003f40",
            116_234_130,
            "0x58d4e42615171c4f460338d9805d0f86143dce14548b42c4316643240f103369",
            1_707_911_507,
            ("0xb78ed12bf879e5ae0bfb12888e48b814c71ca98478d596d70e6d206ed2074129", 19_234_495),
            0,
        ),
        cross_unsafe_l2: L2BlockRef::default(),
        local_safe_l2: L2BlockRef::default(),
        queued_unsafe_l2: L2BlockRef::default(),
        engine_sync_target: L2BlockRef::default(),
        shape: SyncStatusShape::default(),
    }
}

fn expected_late_2024() -> SyncStatus {
    let finalized_l1 = l1(
        "0x6f20411e99361cde48230537392c116f1731580107d98bdc58da3874ebbfc075",
        21_234_500,
        "0x7af5559bc8a2623a59a6fb8c98b37d6ec9a22be69a97702a7755b287a6bb29b0",
        1_732_100_207,
    );
    SyncStatus {
        current_l1: l1(
            "0xe3c62543414256ebd0bcaa60e8b816ec59dcd0f1d85acfd3dc3b83a00ba9c66a",
            21_234_567,
            "0x359a8f6e85aa67ee1af53a4ba364ac0499685ead909f14f0c97b836b93eb785b",
            1_732_101_011,
        ),
        current_l1_finalized: finalized_l1,
        head_l1: l1(
            "0x55f94644d45dcb3548591097fea82035fd4001054b5d0a47e4a3ed0570d31ee3",
            21_234_571,
            "0xeea553cbda37cf1d1d08ab890e1af52f1e3e849a7a3e6a2ef081b439f1e376e4",
            1_732_101_059,
        ),
        safe_l1: l1(
            "0x2968b27a9a357e75ee492ef0762c701ae1a4d8b907ef3f3c3289c66198701a2a",
            21_234_535,
            "0x1538d085dd30a3c84cd55038a0155797f8bb4191b0ce8265cc7111d291b4dae3",
            1_732_100_627,
        ),
        finalized_l1,
        unsafe_l2: l2(
            "0x06e7e9eb27ba65c8c0304ef6e3f33b6ebdb69fa08a2d8ed9dbd62a3b01cea4fc",
            128_456_789,
            "0x5a2254ab6a954e521715bbb089eb048f6490613e1c144addf4f31b624f85e1d4",
            1_732_101_057,
            ("0xd215b58dd707fd628875c763a0091b9de7ef8d40775c73535f55b4a18bcdde1f", 21_234_569),
            2,
        ),
        safe_l2: l2(
            "0x5fa13ddf4e9f493833cadc6aa4fae1bb2fdfa5f4bda6110b14eb97be488691cc",
            128_456_300,
            "0x6af2e34628fa8854a5a0292806e7dd0e707dc845460a77aa5ec898b8248416a8",
            1_732_100_079,
            ("0x88d62874d8729373e60e36e6b15592bf8fa7d3e32672cc2069a1a2cd98c5d5d3", 21_234_488),
            5,
        ),
        finalized_l2: l2(
            "0x9ce59def3dceae209a4e5fb2ab4f8728cedc759a433d9c3ccda065ed11429480",
            128_456_000,
            "0x4f25c319554eaf13ff7a9e2eb3864bf85920811881f873ce41b33bf872d925a1",
            1_732_099_479,
            ("0xc844343d54da124440a3f0602909b4f5d8a7a5fa5c253bf8d86816b5a89f66b3", 21_234_438),
            3,
        ),
        pending_safe_l2: l2(
            "0x51c76f2543ecb1bb95c81cf6f5d84c8d82ad2754149f16973e7778e9644832c5",
            128_456_310,
            "0x075c735cbc0eaa0ba5a47744ff07d48a101181e03ecf3a6331066c8f996680ab",
            1_732_100_099,
            ("0x1c6f048b37290513a570a03d75e4e4b9348d357aab3db0b00a44a712522bca17", 21_234_490),
            1,
        ),
        cross_unsafe_l2: l2(
            "0x2a2f52d7049f88839c689b9c3682201e27291a4e02d6194dfa92d1997ab1004f",
            128_456_785,
            "0xbb4c1b1c27276259aca24efb5fdaf84d01d02a060253efc350034d7c89b976e6",
            1_732_101_049,
            ("0x188bce71cb0a5defce4b9eadde53034b0e2a1c234f21f59cf130d8e4ce54d1df", 21_234_568),
            4,
        ),
        local_safe_l2: l2(
            "0x8ccd146aa55058f76d7d34d4409e293a0a39ee6e9f821492be2bc3dd79b47246",
            128_456_305,
            "0xfdd19c48126824c42c962fee15be63255225b094d8182036a1a5641ce6968a99",
            1_732_100_089,
            ("0x03e9fce88bad9b5c15c10822115d337370cdc8777d2ba68784205cb55550ed44", 21_234_489),
            0,
        ),
        queued_unsafe_l2: L2BlockRef::default(),
        engine_sync_target: L2BlockRef::default(),
        shape: SyncStatusShape::default(),
    }
}

/// A status with every field set (the late-2024 values plus the 2023-only keys).
fn fully_populated() -> SyncStatus {
    let v2023 = expected_2023();
    SyncStatus {
        queued_unsafe_l2: v2023.queued_unsafe_l2,
        engine_sync_target: v2023.engine_sync_target,
        ..expected_late_2024()
    }
}

// ---------------------------------------------------------------------------------------------
// optimism_syncStatus: decoding every version
// ---------------------------------------------------------------------------------------------

#[test]
fn version_fixtures_carry_exactly_the_key_set_of_their_version() {
    for (fixture, shape) in [
        (SYNC_STATUS_2023, SyncStatusShape::V2023),
        (SYNC_STATUS_EARLY_2024, SyncStatusShape::Early2024),
        (SYNC_STATUS_LATE_2024, SyncStatusShape::Late2024),
        (SYNC_STATUS_UNINITIALISED, SyncStatusShape::Late2024),
        (SYNC_STATUS_HEX_NUMBERS, SyncStatusShape::Early2024),
    ] {
        assert_eq!(sorted_keys(&parse_value(fixture)), keys_of_shape(shape), "{shape:?}");
    }
}

#[test]
fn sync_status_from_2023_node_decodes_with_defaults_for_new_keys() {
    let status = decode_status(SYNC_STATUS_2023);

    assert_eq!(
        status.current_l1.hash,
        hash("0x19868e963ea6911b50501d928d62d23446ec08345102b2fa181c3da50da127fe")
    );
    assert_eq!(status.current_l1.number, 17_612_345);
    assert_eq!(status.head_l1.timestamp, 1_688_140_871);
    assert_eq!(status.current_l1_finalized, status.finalized_l1);
    assert_eq!(
        status.unsafe_l2.hash,
        hash("0x020793f659ee136421ee81d65f975853482f96e886e6c5139b177ecda9bd9fbb")
    );
    assert_eq!(status.unsafe_l2.number, 106_123_456);
    assert_eq!(status.unsafe_l2.l1_origin.number, 17_612_347);
    assert_eq!(status.unsafe_l2.sequence_number, 3);
    assert_eq!(status.queued_unsafe_l2.number, 106_123_460);
    assert_eq!(status.queued_unsafe_l2.sequence_number, 7);
    assert_eq!(status.engine_sync_target, status.unsafe_l2);

    // Keys that did not exist in 2023 take their default.
    assert!(status.pending_safe_l2.is_zero());
    assert!(status.cross_unsafe_l2.is_zero());
    assert!(status.local_safe_l2.is_zero());

    assert!(!status.is_uninitialised());
    assert_eq!(status, expected_2023());
}

#[test]
fn sync_status_from_early_2024_node_decodes_pending_safe_and_defaults_removed_keys() {
    let status = decode_status(SYNC_STATUS_EARLY_2024);

    assert_eq!(
        status.pending_safe_l2.hash,
        hash("0x84f00800e4b68046f660fdb3593699588607e683ef5f4025b444e621bf003f40")
    );
    assert_eq!(status.pending_safe_l2.number, 116_234_130);
    assert_eq!(status.pending_safe_l2.sequence_number, 0);
    assert_eq!(status.safe_l2.number, 116_234_100);
    assert_eq!(status.unsafe_l2.timestamp, 1_707_912_381);

    // Removed in early 2024 and not yet added: default.
    assert!(status.queued_unsafe_l2.is_zero());
    assert!(status.engine_sync_target.is_zero());
    assert!(status.cross_unsafe_l2.is_zero());
    assert!(status.local_safe_l2.is_zero());

    assert!(!status.is_uninitialised());
    assert_eq!(status, expected_early_2024());
}

#[test]
fn sync_status_from_late_2024_node_decodes_cross_unsafe_and_local_safe() {
    let status = decode_status(SYNC_STATUS_LATE_2024);

    assert_eq!(
        status.cross_unsafe_l2.hash,
        hash("0x2a2f52d7049f88839c689b9c3682201e27291a4e02d6194dfa92d1997ab1004f")
    );
    assert_eq!(status.cross_unsafe_l2.number, 128_456_785);
    assert_eq!(
        status.local_safe_l2.l1_origin.hash,
        hash("0x03e9fce88bad9b5c15c10822115d337370cdc8777d2ba68784205cb55550ed44")
    );
    assert_eq!(status.local_safe_l2.number, 128_456_305);
    assert_eq!(status.unsafe_l2.number, 128_456_789);
    assert_eq!(status.finalized_l2.sequence_number, 3);
    assert!(status.queued_unsafe_l2.is_zero());
    assert!(status.engine_sync_target.is_zero());

    assert!(!status.is_uninitialised());
    assert_eq!(status, expected_late_2024());
}

#[test]
fn sync_status_from_uninitialised_node_is_all_zero_and_reports_uninitialised() {
    let status = decode_status(SYNC_STATUS_UNINITIALISED);

    assert!(status.is_uninitialised());
    assert_eq!(status, SyncStatus::default());
    for l1_ref in
        [status.current_l1, status.current_l1_finalized, status.head_l1, status.safe_l1, status.finalized_l1]
    {
        assert!(l1_ref.is_zero());
    }
    for l2_ref in [
        status.unsafe_l2,
        status.safe_l2,
        status.finalized_l2,
        status.pending_safe_l2,
        status.cross_unsafe_l2,
        status.local_safe_l2,
    ] {
        assert!(l2_ref.is_zero());
        assert_eq!(l2_ref.hash, B256::ZERO);
        assert_eq!(l2_ref.number, 0);
    }
}

#[test]
fn sync_status_with_unknown_keys_ignores_them_and_decodes_like_the_same_reply_without_them() {
    let value = parse_value(SYNC_STATUS_UNKNOWN_KEYS);
    // The fixture really does carry keys we do not know, at the top level and inside refs.
    for key in ["safe_l2_extra", "cross_safe_l2", "node_version", "interop_enabled", "sync_mode"] {
        assert!(value.get(key).is_some(), "fixture lacks {key}");
    }
    assert!(value.pointer("/unsafe_l2/l1origin/timestamp").is_some());
    assert!(value.pointer("/unsafe_l2/chainId").is_some());
    assert!(value.pointer("/head_l1/baseFeePerGas").is_some());

    let status = decode_status(SYNC_STATUS_UNKNOWN_KEYS);
    assert_eq!(status, expected_late_2024());
    assert_eq!(
        status.safe_l2.hash,
        hash("0x5fa13ddf4e9f493833cadc6aa4fae1bb2fdfa5f4bda6110b14eb97be488691cc")
    );
    assert_eq!(status.unsafe_l2.l1_origin.number, 21_234_569);
    assert_eq!(status.head_l1.number, 21_234_571);
}

#[test]
fn sync_status_with_missing_keys_defaults_them_to_zero() {
    let status = decode_status(SYNC_STATUS_MISSING_KEYS);

    assert_eq!(
        status.head_l1,
        l1(
            "0x9942f466d85abf2ac6bcb6aea5fcdd80e475dccd3be404c510021d9a895038d0",
            21_300_000,
            "0x75609a536751f05de07180bb81bae73472a3bc20a0e874096a3d3bded135a289",
            1_732_893_011,
        )
    );
    // A ref with keys missing inside it.
    assert_eq!(
        status.finalized_l1,
        L1BlockRef {
            hash: hash("0xba3d34bd18db090bfbd98002e0c52cfdacaec99e07300fc541ecf7febbc54b34"),
            number: 21_299_930,
            parent_hash: B256::ZERO,
            timestamp: 0,
        }
    );
    // No l1origin, no sequenceNumber.
    assert_eq!(
        status.unsafe_l2,
        L2BlockRef {
            hash: hash("0xf627713e861d4a21ef4b31fa80d9a05d8c17ee6eb451dbdab6ea7a227ecb521f"),
            number: 129_200_000,
            parent_hash: hash("0xeb6411d7290d3c09050bd764a0b51cfa0cf38eafe78c0b71889d174a39913d5d"),
            timestamp: 1_732_893_009,
            l1_origin: BlockId::default(),
            sequence_number: 0,
        }
    );
    // No parentHash, no timestamp, l1origin without number.
    assert_eq!(
        status.safe_l2,
        L2BlockRef {
            hash: hash("0xff6700f2e33ac9f39cc3aabb75814edd1f5d36e61bc409b1b9e20b8c3cd84743"),
            number: 129_199_500,
            parent_hash: B256::ZERO,
            timestamp: 0,
            l1_origin: BlockId {
                hash: hash("0x72ece018730913b4e97c83c993181cb9ede6a89765aef82dee91f1494d30d057"),
                number: 0,
            },
            sequence_number: 4,
        }
    );
    // Keys absent altogether.
    for l1_ref in [status.current_l1, status.current_l1_finalized, status.safe_l1] {
        assert_eq!(l1_ref, L1BlockRef::default());
    }
    for l2_ref in [
        status.finalized_l2,
        status.pending_safe_l2,
        status.cross_unsafe_l2,
        status.local_safe_l2,
        status.queued_unsafe_l2,
        status.engine_sync_target,
    ] {
        assert_eq!(l2_ref, L2BlockRef::default());
    }
    assert!(!status.is_uninitialised());
}

#[test]
fn sync_status_with_no_keys_at_all_is_uninitialised() {
    let status = decode_status("{}");
    assert_eq!(status, SyncStatus::default());
    assert!(status.is_uninitialised());
}

#[test]
fn sync_status_with_null_refs_treats_null_like_a_missing_key() {
    let status = decode_status(SYNC_STATUS_NULL_REFS);

    assert_eq!(
        status.head_l1,
        L1BlockRef {
            hash: hash("0x5524d5adf7661e529a10e9665f92d3a6c4e636a5557521f6148572fd832f4ea5"),
            number: 21_300_010,
            parent_hash: B256::ZERO,
            timestamp: 1_732_893_131,
        }
    );
    assert_eq!(
        status.unsafe_l2,
        L2BlockRef {
            hash: hash("0x38b5a0a561dcf7d61c37848faba5542d421841dac77cf28ba33cbb020fdf7f11"),
            number: 129_200_060,
            parent_hash: hash("0x8f5a3e4f2c33486458d934ff6db9831f9e37832d1f0929d76bf46dc83d85f244"),
            timestamp: 1_732_893_129,
            l1_origin: BlockId::default(),
            sequence_number: 0,
        }
    );
    for l1_ref in [status.current_l1, status.current_l1_finalized, status.safe_l1, status.finalized_l1] {
        assert!(l1_ref.is_zero());
    }
    for l2_ref in [
        status.safe_l2,
        status.finalized_l2,
        status.pending_safe_l2,
        status.cross_unsafe_l2,
        status.local_safe_l2,
        status.queued_unsafe_l2,
        status.engine_sync_target,
    ] {
        assert!(l2_ref.is_zero());
    }
    assert!(!status.is_uninitialised());
}

#[test]
fn sync_status_with_null_unsafe_head_is_uninitialised() {
    let status = decode_status(r#"{"unsafe_l2": null, "safe_l2": null}"#);
    assert!(status.is_uninitialised());
}

#[test]
fn sync_status_with_hex_string_numbers_decodes_like_plain_integers() {
    let value = parse_value(SYNC_STATUS_HEX_NUMBERS);
    assert_eq!(value.pointer("/unsafe_l2/number"), Some(&json!("0x6ed9947")));
    assert_eq!(value.pointer("/head_l1/timestamp"), Some(&json!("0x65CCACBF")));

    let status = decode_status(SYNC_STATUS_HEX_NUMBERS);
    assert_eq!(status, expected_early_2024());
    assert_eq!(status.unsafe_l2.number, 116_234_567);
    assert_eq!(status.unsafe_l2.l1_origin.number, 19_234_568);
    assert_eq!(status.unsafe_l2.sequence_number, 4);
    assert_eq!(status.head_l1.timestamp, 1_707_912_383);
}

#[test]
fn l2_ref_with_decimal_string_numbers_decodes_like_plain_integers() {
    let text = json!({
        "hash": "0x06e7e9eb27ba65c8c0304ef6e3f33b6ebdb69fa08a2d8ed9dbd62a3b01cea4fc",
        "number": "128456789",
        "parentHash": "0x5a2254ab6a954e521715bbb089eb048f6490613e1c144addf4f31b624f85e1d4",
        "timestamp": "1732101057",
        "l1origin": {
            "hash": "0xd215b58dd707fd628875c763a0091b9de7ef8d40775c73535f55b4a18bcdde1f",
            "number": "21234569"
        },
        "sequenceNumber": "2"
    })
    .to_string();
    let decoded: L2BlockRef = serde_json::from_str(&text).expect("decimal strings decode");
    assert_eq!(decoded, expected_late_2024().unsafe_l2);
}

// ---------------------------------------------------------------------------------------------
// optimism_syncStatus: encoding every version
// ---------------------------------------------------------------------------------------------

#[test]
fn sync_status_shapes_have_stable_wire_names_and_late_2024_is_the_default() {
    assert_eq!(SyncStatusShape::default(), SyncStatusShape::Late2024);
    for (shape, name) in [
        (SyncStatusShape::V2023, "2023"),
        (SyncStatusShape::Early2024, "early-2024"),
        (SyncStatusShape::Late2024, "late-2024"),
    ] {
        assert_eq!(serde_json::to_value(shape).expect("serializes"), json!(name));
        let parsed: SyncStatusShape = serde_json::from_value(json!(name)).expect("parses");
        assert_eq!(parsed, shape);
    }
}

#[test]
fn to_json_for_each_shape_writes_exactly_that_versions_key_set() {
    for status in [fully_populated(), SyncStatus::default()] {
        for shape in ALL_SHAPES {
            let value = status.to_json(shape);
            assert_eq!(sorted_keys(&value), keys_of_shape(shape), "{shape:?}");
        }
    }
}

#[test]
fn to_json_writes_refs_with_the_reference_keys_and_plain_integer_numbers() {
    let value = fully_populated().to_json(SyncStatusShape::Late2024);

    let head_l1 = &value["head_l1"];
    assert_eq!(sorted_keys(head_l1), ["hash", "number", "parentHash", "timestamp"]);
    assert_eq!(head_l1["number"], json!(21_234_571_u64));
    assert_eq!(head_l1["timestamp"], json!(1_732_101_059_u64));

    let unsafe_l2 = &value["unsafe_l2"];
    assert_eq!(
        sorted_keys(unsafe_l2),
        ["hash", "l1origin", "number", "parentHash", "sequenceNumber", "timestamp"]
    );
    assert_eq!(sorted_keys(&unsafe_l2["l1origin"]), ["hash", "number"]);
    assert_eq!(
        unsafe_l2["hash"],
        json!("0x06e7e9eb27ba65c8c0304ef6e3f33b6ebdb69fa08a2d8ed9dbd62a3b01cea4fc")
    );
    assert!(unsafe_l2["number"].is_u64(), "number must be a JSON integer, not hex");
    assert!(unsafe_l2["timestamp"].is_u64());
    assert!(unsafe_l2["sequenceNumber"].is_u64());
    assert!(unsafe_l2["l1origin"]["number"].is_u64());
    assert_eq!(unsafe_l2["l1origin"]["number"], json!(21_234_569_u64));
}

#[test]
fn to_json_reproduces_each_version_fixture_exactly() {
    for (fixture, shape) in [
        (SYNC_STATUS_2023, SyncStatusShape::V2023),
        (SYNC_STATUS_EARLY_2024, SyncStatusShape::Early2024),
        (SYNC_STATUS_LATE_2024, SyncStatusShape::Late2024),
        (SYNC_STATUS_UNINITIALISED, SyncStatusShape::Late2024),
    ] {
        let status = decode_status(fixture);
        assert_eq!(status.to_json(shape), parse_value(fixture), "{shape:?}");
    }
}

#[test]
fn to_json_round_trips_each_shape_back_to_an_equal_status() {
    let full = fully_populated();
    for shape in ALL_SHAPES {
        let text = full.to_json(shape).to_string();
        let decoded = without_shape(decode_status(&text));
        assert_eq!(decoded, project_to_shape(&full, shape), "{shape:?}");
    }
    // A status that only uses its shape's keys survives the trip unchanged.
    for (expected, shape) in [
        (expected_2023(), SyncStatusShape::V2023),
        (expected_early_2024(), SyncStatusShape::Early2024),
        (expected_late_2024(), SyncStatusShape::Late2024),
        (SyncStatus::default(), SyncStatusShape::V2023),
    ] {
        let decoded = without_shape(decode_status(&expected.to_json(shape).to_string()));
        assert_eq!(decoded, without_shape(expected), "{shape:?}");
    }
}

#[test]
fn serializing_a_status_uses_the_key_set_of_its_shape_field() {
    for shape in ALL_SHAPES {
        let status = SyncStatus { shape, ..fully_populated() };
        let value = serde_json::to_value(&status).expect("serializes");
        assert_eq!(sorted_keys(&value), keys_of_shape(shape), "{shape:?}");
        assert_eq!(value, status.to_json(shape), "{shape:?}");

        let text = serde_json::to_string(&status).expect("serializes");
        assert_eq!(without_shape(decode_status(&text)), project_to_shape(&status, shape));
    }
    // The default shape is late 2024.
    let value = serde_json::to_value(fully_populated()).expect("serializes");
    assert_eq!(sorted_keys(&value), keys_of_shape(SyncStatusShape::Late2024));
}

#[test]
fn decoding_never_reads_a_shape_from_the_wire() {
    let mut value = parse_value(SYNC_STATUS_2023);
    value["shape"] = json!("2023");
    let status: SyncStatus = serde_json::from_value(value).expect("decodes");
    assert_eq!(status.shape, SyncStatusShape::default());
}

// ---------------------------------------------------------------------------------------------
// op-geth block headers
// ---------------------------------------------------------------------------------------------

#[test]
fn op_geth_latest_block_decodes_hash_number_parent_and_timestamp() {
    let header: BlockHeader = serde_json::from_str(OP_GETH_BLOCK_LATEST).expect("op-geth header decodes");

    assert_eq!(header.hash, hash("0x06e7e9eb27ba65c8c0304ef6e3f33b6ebdb69fa08a2d8ed9dbd62a3b01cea4fc"));
    assert_eq!(
        header.parent_hash,
        hash("0x5a2254ab6a954e521715bbb089eb048f6490613e1c144addf4f31b624f85e1d4")
    );
    assert_eq!(header.number.to::<u64>(), 128_456_789);
    assert_eq!(header.timestamp.to::<u64>(), 1_732_101_057);

    // The op-geth head is the block op-node reports as its unsafe head.
    let unsafe_l2 = expected_late_2024().unsafe_l2;
    assert_eq!(header.hash, unsafe_l2.hash);
    assert_eq!(header.number.to::<u64>(), unsafe_l2.number);
    assert_eq!(header.parent_hash, unsafe_l2.parent_hash);
    assert_eq!(header.timestamp.to::<u64>(), unsafe_l2.timestamp);

    // The other fields it models.
    assert_eq!(header.state_root, hash("0xf76fdc6c369aad6b68b75b48e99f73f289509dddc3ebffc5ccd8099ee02cab83"));
    assert_eq!(
        header.transactions_root,
        hash("0xe42220d8c947e0dedc8b137913993ed6da209da99098b260ff3ac1c97570cf1d")
    );
    assert_eq!(
        header.receipts_root,
        hash("0xd892aa68bfcc8c928344b16103485a1c292be01e4fc2d031c41885221c25f6aa")
    );
    assert_eq!(header.miner, address!("0x4200000000000000000000000000000000000011"));
    assert_eq!(header.gas_limit.to::<u64>(), 60_000_000);
    assert_eq!(header.gas_used.to::<u64>(), 0x008e_4c1d);
    assert_eq!(header.base_fee_per_gas.map(|fee| fee.to::<u64>()), Some(965));
    assert!(header.difficulty.is_zero());
    assert!(header.extra_data.is_empty());
    assert_eq!(
        header.transactions,
        [
            hash("0xbb43e451f9ab2845ad0f3d761f3d0201bfe8c26b715568b9126bef73fecde3b5"),
            hash("0x3f79a8afba701070d26d7f79a73aff5cfd4501150bf8e28d3e14be535893b805"),
            hash("0x98e7d8a50f510dc6c4393a96e78c3403049d3e8474f2a7dccc06616cd334b459"),
        ]
    );
}

#[test]
fn op_geth_block_reply_decodes_as_some_header() {
    let header: Option<BlockHeader> =
        serde_json::from_str(OP_GETH_BLOCK_LATEST).expect("op-geth header decodes");
    let header = header.expect("a block");
    assert_eq!(header.number.to::<u64>(), 128_456_789);
}

#[test]
fn op_geth_null_reply_decodes_to_none() {
    let header: Option<BlockHeader> = serde_json::from_str(OP_GETH_BLOCK_NULL).expect("null decodes");
    assert_eq!(header, None);
}

#[test]
fn block_header_serializes_numbers_as_hex_quantities() {
    let header: BlockHeader = serde_json::from_str(OP_GETH_BLOCK_LATEST).expect("op-geth header decodes");
    let value = serde_json::to_value(&header).expect("serializes");
    assert_eq!(value["number"], json!("0x7a81855"));
    assert_eq!(value["timestamp"], json!("0x673dc3c1"));
    assert_eq!(value["parentHash"], parse_value(OP_GETH_BLOCK_LATEST)["parentHash"]);
    let again: BlockHeader = serde_json::from_value(value).expect("decodes again");
    assert_eq!(again, header);
}

// ---------------------------------------------------------------------------------------------
// BlockNumberOrTag
// ---------------------------------------------------------------------------------------------

#[test]
fn block_number_or_tag_parses_and_serializes_tags_and_hex_numbers() {
    for (text, expected) in [
        ("latest", BlockNumberOrTag::Latest),
        ("safe", BlockNumberOrTag::Safe),
        ("finalized", BlockNumberOrTag::Finalized),
        ("pending", BlockNumberOrTag::Pending),
        ("earliest", BlockNumberOrTag::Earliest),
        ("0x1b4", BlockNumberOrTag::Number(436)),
        ("0x0", BlockNumberOrTag::Number(0)),
    ] {
        assert_eq!(text.parse::<BlockNumberOrTag>(), Ok(expected), "{text}");
        let from_json: BlockNumberOrTag = serde_json::from_value(json!(text)).expect("selector decodes");
        assert_eq!(from_json, expected, "{text}");
        assert_eq!(expected.to_string(), text);
        assert_eq!(serde_json::to_value(expected).expect("serializes"), json!(text));
    }
}

#[test]
fn block_number_or_tag_rejects_banana_and_decimal_numbers_with_a_helpful_error() {
    for text in ["banana", "12", "Latest", ""] {
        let error = text.parse::<BlockNumberOrTag>().expect_err("must be rejected");
        assert!(error.contains(&format!("{text:?}")), "error names the input: {error}");
        assert!(
            error.contains("expected latest, safe, finalized, pending, earliest or a 0x hex number"),
            "error lists what is accepted: {error}"
        );
        let json_error = serde_json::from_value::<BlockNumberOrTag>(json!(text))
            .expect_err("must be rejected")
            .to_string();
        assert!(json_error.contains("invalid block selector"), "{json_error}");
    }
}

#[test]
fn block_number_or_tag_rejects_malformed_hex_numbers() {
    for text in ["0x", "0xzz", "0x1b4g", "0x10000000000000000"] {
        let error = text.parse::<BlockNumberOrTag>().expect_err("must be rejected");
        assert!(error.contains(&format!("{text:?}")), "error names the input: {error}");
    }
    assert!(serde_json::from_value::<BlockNumberOrTag>(json!(436)).is_err());
}

// ---------------------------------------------------------------------------------------------
// Display of refs
// ---------------------------------------------------------------------------------------------

#[test]
fn l2_block_ref_display_renders_hash_colon_number() {
    let unsafe_l2 = expected_late_2024().unsafe_l2;
    assert_eq!(
        unsafe_l2.to_string(),
        "0x06e7e9eb27ba65c8c0304ef6e3f33b6ebdb69fa08a2d8ed9dbd62a3b01cea4fc:128456789"
    );
    assert_eq!(unsafe_l2.id().to_string(), unsafe_l2.to_string());
    assert_eq!(unsafe_l2.id(), BlockId { hash: unsafe_l2.hash, number: unsafe_l2.number });
    assert_eq!(
        L2BlockRef::default().to_string(),
        "0x0000000000000000000000000000000000000000000000000000000000000000:0"
    );
}

// ---------------------------------------------------------------------------------------------
// admin_* errors
// ---------------------------------------------------------------------------------------------

const HEAD_HASH: &str = "0x06e7e9eb27ba65c8c0304ef6e3f33b6ebdb69fa08a2d8ed9dbd62a3b01cea4fc";
const OTHER_HASH: &str = "0x2a2f52d7049f88839c689b9c3682201e27291a4e02d6194dfa92d1997ab1004f";

#[test]
fn admin_error_message_helpers_produce_exactly_the_reference_strings() {
    assert_eq!(APPLICATION_ERROR_CODE, -32000);
    assert_eq!(METHOD_NOT_FOUND_CODE, -32601);
    assert_eq!(op_node_errors::SEQUENCER_NOT_RUNNING, "sequencer not running");
    assert_eq!(op_node_errors::SEQUENCER_NOT_ENABLED, "sequencer is not enabled");
    assert_eq!(op_node_errors::SEQUENCER_ALREADY_RUNNING, "sequencer already running");
    assert_eq!(op_node_errors::SEQUENCER_NOT_LEADER, "sequencer is not the leader, aborting");

    assert_eq!(
        method_not_available("admin_startSequencer"),
        "the method admin_startSequencer does not exist/is not available"
    );
    assert_eq!(
        no_prestate(hash(OTHER_HASH), 0),
        format!("no prestate, cannot determine if sequencer start at {OTHER_HASH}:0 is safe")
    );
    assert_eq!(
        no_prestate(hash(OTHER_HASH), 0),
        "no prestate, cannot determine if sequencer start at \
         0x2a2f52d7049f88839c689b9c3682201e27291a4e02d6194dfa92d1997ab1004f:0 is safe"
    );
    assert_eq!(
        hash_mismatch(hash(HEAD_HASH), 12, hash(OTHER_HASH)),
        "block hash does not match: head \
         0x06e7e9eb27ba65c8c0304ef6e3f33b6ebdb69fa08a2d8ed9dbd62a3b01cea4fc:12, received \
         0x2a2f52d7049f88839c689b9c3682201e27291a4e02d6194dfa92d1997ab1004f"
    );
}

#[test]
fn a_hash_mismatch_tells_the_nodes_head_and_other_wordings_tell_nothing() {
    let reference = "block hash does not match: head \
         0x06e7e9eb27ba65c8c0304ef6e3f33b6ebdb69fa08a2d8ed9dbd62a3b01cea4fc:12, received \
         0x2a2f52d7049f88839c689b9c3682201e27291a4e02d6194dfa92d1997ab1004f";
    assert_eq!(mismatch_head(reference), Some((hash(HEAD_HASH), 12)));
    assert_eq!(mismatch_head(&format!("engine: {reference}")), Some((hash(HEAD_HASH), 12)), "wrapped");
    assert_eq!(mismatch_head("block hash does not match"), None);
    assert_eq!(mismatch_head("block hash does not match: head 0x06e7:twelve, received 0x2a"), None);
    assert_eq!(mismatch_head("sequencer already running"), None);
}

#[test]
fn admin_error_classify_maps_every_reference_message_to_its_variant() {
    let cases = [
        ("sequencer not running", AdminError::NotRunning),
        ("sequencer is not enabled", AdminError::NotEnabled),
        ("sequencer already running", AdminError::AlreadyRunning),
        ("sequencer is not the leader, aborting", AdminError::NotLeader),
        (
            "no prestate, cannot determine if sequencer start at \
             0x2a2f52d7049f88839c689b9c3682201e27291a4e02d6194dfa92d1997ab1004f:0 is safe",
            AdminError::NoPrestate,
        ),
        (
            "block hash does not match: head \
             0x06e7e9eb27ba65c8c0304ef6e3f33b6ebdb69fa08a2d8ed9dbd62a3b01cea4fc:12, received \
             0x2a2f52d7049f88839c689b9c3682201e27291a4e02d6194dfa92d1997ab1004f",
            AdminError::HashMismatch,
        ),
    ];
    for (message, expected) in cases {
        assert_eq!(AdminError::classify(-32000, message), expected, "{message}");
    }
    // The helpers' output classifies the same way.
    assert_eq!(
        AdminError::classify(APPLICATION_ERROR_CODE, &no_prestate(hash(OTHER_HASH), 0)),
        AdminError::NoPrestate
    );
    assert_eq!(
        AdminError::classify(APPLICATION_ERROR_CODE, &hash_mismatch(hash(HEAD_HASH), 12, hash(OTHER_HASH))),
        AdminError::HashMismatch
    );
}

#[test]
fn admin_error_classify_matches_messages_wrapped_in_context() {
    assert_eq!(
        AdminError::classify(-32000, "failed to start sequencer: sequencer already running"),
        AdminError::AlreadyRunning
    );
    assert_eq!(AdminError::classify(-32000, "stop failed: sequencer not running"), AdminError::NotRunning);
}

#[test]
fn admin_error_classify_maps_method_not_found_to_admin_disabled() {
    for method in [
        "admin_startSequencer",
        "admin_stopSequencer",
        "admin_sequencerActive",
        "admin_resetDerivationPipeline",
    ] {
        assert_eq!(
            AdminError::classify(-32601, &method_not_available(method)),
            AdminError::AdminDisabled,
            "{method}"
        );
    }
    // The code decides, whatever the message says.
    assert_eq!(AdminError::classify(-32601, "sequencer not running"), AdminError::AdminDisabled);
}

#[test]
fn admin_error_classify_maps_unknown_messages_to_other() {
    for message in [
        "",
        "payload has bad block hash: \
         0x06e7e9eb27ba65c8c0304ef6e3f33b6ebdb69fa08a2d8ed9dbd62a3b01cea4fc, actual block hash \
         is: 0x2a2f52d7049f88839c689b9c3682201e27291a4e02d6194dfa92d1997ab1004f",
        "context deadline exceeded",
        "the method admin_startSequencer does not exist/is not available",
    ] {
        assert_eq!(AdminError::classify(-32000, message), AdminError::Other, "{message}");
    }
}

// ---------------------------------------------------------------------------------------------
// Wrong types are errors, never silent defaults
// ---------------------------------------------------------------------------------------------

/// The late-2024 fixture with the value at `pointer` replaced, re-encoded as wire text.
fn late_2024_with(pointer: &str, replacement: Value) -> String {
    let mut value = parse_value(SYNC_STATUS_LATE_2024);
    *value.pointer_mut(pointer).unwrap_or_else(|| panic!("fixture has {pointer}")) = replacement;
    value.to_string()
}

#[test]
fn sync_status_with_wrong_types_is_a_decode_error_not_a_default() {
    let short_hash = "0x06e7e9eb27ba65c8c0304ef6e3f33b6ebdb69fa08a2d8ed9dbd62a3b01cea4";
    let long_hash = "0x06e7e9eb27ba65c8c0304ef6e3f33b6ebdb69fa08a2d8ed9dbd62a3b01cea4fc00";
    let cases = [
        ("/unsafe_l2/number", json!(true)),
        ("/unsafe_l2/number", json!(false)),
        ("/unsafe_l2/number", json!(1.5)),
        ("/unsafe_l2/number", json!(-1)),
        ("/unsafe_l2/number", json!("banana")),
        ("/unsafe_l2/number", json!("0x")),
        ("/unsafe_l2/number", json!("0x10000000000000000")),
        ("/unsafe_l2/number", json!([1])),
        ("/unsafe_l2/number", json!({"value": 1})),
        ("/unsafe_l2/timestamp", json!(true)),
        ("/unsafe_l2/sequenceNumber", json!("two")),
        ("/unsafe_l2/hash", json!(short_hash)),
        ("/unsafe_l2/hash", json!(long_hash)),
        ("/unsafe_l2/hash", json!(12345)),
        ("/unsafe_l2/hash", json!(true)),
        ("/unsafe_l2/hash", json!("0xnothex")),
        ("/unsafe_l2/parentHash", json!(short_hash)),
        ("/unsafe_l2/l1origin", json!("0xd215b58dd707fd628875c763a0091b9de7ef8d40775c73535f55b4a18bcdde1f")),
        ("/unsafe_l2/l1origin/hash", json!(short_hash)),
        ("/unsafe_l2/l1origin/number", json!(true)),
        ("/unsafe_l2", json!(true)),
        ("/unsafe_l2", json!(7)),
        ("/unsafe_l2", json!(HEAD_HASH)),
        ("/head_l1/number", json!(true)),
        ("/head_l1/hash", json!(long_hash)),
        ("/head_l1/timestamp", json!("yesterday")),
        ("/current_l1", json!("latest")),
        ("/pending_safe_l2/number", json!(true)),
        ("/local_safe_l2/hash", json!(false)),
    ];
    for (pointer, replacement) in cases {
        let text = late_2024_with(pointer, replacement.clone());
        let result = serde_json::from_str::<SyncStatus>(&text);
        assert!(
            result.is_err(),
            "{pointer} = {replacement} decoded silently into {:?}",
            result.map(|status| status.unsafe_l2)
        );
    }
}

#[test]
fn sync_status_reply_that_is_not_an_object_is_a_decode_error() {
    for text in ["null", "true", "7", "\"synced\"", "[1, 2]"] {
        assert!(serde_json::from_str::<SyncStatus>(text).is_err(), "{text}");
    }
}

#[test]
fn hex_number_decode_error_names_the_bad_value() {
    let text = late_2024_with("/safe_l2/number", json!("banana"));
    let error = serde_json::from_str::<SyncStatus>(&text).expect_err("rejected").to_string();
    assert!(error.contains("banana"), "{error}");
}

#[test]
fn op_geth_header_with_wrong_types_is_a_decode_error() {
    let cases = [
        ("/number", json!(true)),
        ("/number", json!("banana")),
        ("/number", json!("0x10000000000000000")),
        ("/timestamp", json!(false)),
        ("/hash", json!("0x06e7e9eb27ba65c8c0304ef6e3f33b6ebdb69fa08a2d8ed9dbd62a3b01cea4")),
        ("/hash", json!(12345)),
        ("/parentHash", json!(true)),
        ("/transactions", json!("0x12")),
    ];
    for (pointer, replacement) in cases {
        let mut value = parse_value(OP_GETH_BLOCK_LATEST);
        *value.pointer_mut(pointer).unwrap_or_else(|| panic!("fixture has {pointer}")) = replacement.clone();
        let result = serde_json::from_str::<Option<BlockHeader>>(&value.to_string());
        assert!(result.is_err(), "{pointer} = {replacement} decoded silently: {result:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Edge cases found while writing these tests.
// ---------------------------------------------------------------------------------------------

#[test]
fn refs_given_as_json_arrays_are_decode_errors() {
    // serde's derived `visit_seq` plus a container-level `#[serde(default)]` turns `[]` into the
    // all-zero value, so a broken reply looks like an uninitialised node instead of an error.
    for (pointer, replacement) in [
        ("/unsafe_l2", json!([])),
        ("/unsafe_l2", json!([HEAD_HASH, 5])),
        ("/unsafe_l2/l1origin", json!([])),
        ("/head_l1", json!([])),
    ] {
        let text = late_2024_with(pointer, replacement.clone());
        let result = serde_json::from_str::<SyncStatus>(&text);
        assert!(result.is_err(), "{pointer} = {replacement} decoded into {result:?}");
    }
}

#[test]
fn a_whole_reply_given_as_an_empty_array_reads_as_uninitialised_not_as_a_live_head() {
    // Top-level structs still accept `[]` (serde's derived visit_seq); what matters is that the
    // result can never pass for a live node: every ref is zero.
    let status: SyncStatus = serde_json::from_str("[]").expect("decodes");
    assert!(status.is_uninitialised());
}

#[test]
fn number_strings_with_a_sign_are_decode_errors() {
    for replacement in ["+12", "0x+12"] {
        let text = late_2024_with("/unsafe_l2/number", json!(replacement));
        let result = serde_json::from_str::<SyncStatus>(&text);
        assert!(result.is_err(), "{replacement} decoded into {:?}", result.map(|s| s.unsafe_l2));
    }
    assert!("0x+1b4".parse::<BlockNumberOrTag>().is_err());
}

#[test]
fn op_geth_pending_block_with_null_hash_and_miner_decodes() {
    let value = parse_value(OP_GETH_BLOCK_PENDING);
    assert_eq!(value["hash"], Value::Null);
    assert_eq!(value["miner"], Value::Null);

    let header: Option<BlockHeader> =
        serde_json::from_str(OP_GETH_BLOCK_PENDING).expect("a pending block decodes");
    let header = header.expect("a block");
    assert_eq!(header.number.to::<u64>(), 128_456_789);
    assert_eq!(
        header.parent_hash,
        hash("0x5a2254ab6a954e521715bbb089eb048f6490613e1c144addf4f31b624f85e1d4")
    );
    assert_eq!(header.timestamp.to::<u64>(), 1_732_101_057);
}

#[test]
fn a_coordinator_event_carries_its_kind_as_the_snake_case_string() {
    use opc_wire::{EventKind, coordinator::CoordinatorEvent};
    let text = r#"{"at_unix_ms":1795000000000,"chain":"devnet","kind":"failover_complete","node":"seq-1","detail":"seq-1 is the leader (epoch 2)","duration_ms":404}"#;
    let event: CoordinatorEvent = serde_json::from_str(text).expect("an event decodes");
    assert_eq!(event.kind, EventKind::FailoverComplete);
    assert_eq!(serde_json::to_string(&event).expect("encodes"), text, "the JSON is unchanged");
    let newer = text.replace("failover_complete", "quorum_lost");
    let event: CoordinatorEvent = serde_json::from_str(&newer).expect("a newer peer's kind decodes");
    assert_eq!(event.kind, EventKind::Unknown("quorum_lost".into()));
}

// ---------------------------------------------------------------------------------------------
// optimism_rollupConfig
// ---------------------------------------------------------------------------------------------

#[test]
fn a_rollup_config_states_its_block_time_in_whole_seconds_and_unknown_keys_are_ignored() {
    let config: opc_wire::RollupConfig =
        serde_json::from_str(include_str!("fixtures/rollup_config.json")).expect("parses");
    assert_eq!(config.block_time, Some(2));
    assert_eq!(config.block_time(), Some(std::time::Duration::from_secs(2)));
    assert_eq!(config.l2_chain_id, Some(4242));
    assert_eq!(config.genesis.l2_time, 1_706_000_000);
    assert_eq!(config.genesis.l1.number, 5_012_345);
}

#[test]
fn a_rollup_config_without_a_usable_block_time_states_none() {
    for text in [r#"{}"#, r#"{"block_time": 0}"#, r#"{"genesis": null, "block_time": null}"#] {
        let config: opc_wire::RollupConfig = serde_json::from_str(text).expect(text);
        assert_eq!(config.block_time(), None, "{text}");
    }
}

#[test]
fn a_paged_coordinator_event_carries_its_seq_and_an_older_one_decodes_without() {
    use opc_wire::coordinator::CoordinatorEvent;
    let text = r#"{"seq":41,"at_unix_ms":1795000000000,"chain":"devnet","kind":"paused","node":null,"detail":"automation paused by operator","duration_ms":null}"#;
    let event: CoordinatorEvent = serde_json::from_str(text).expect("a paged event decodes");
    assert_eq!(event.seq, Some(41));
    assert_eq!(serde_json::to_string(&event).expect("encodes"), text, "the JSON is unchanged");
    let older = text.replace(r#""seq":41,"#, "");
    let event: CoordinatorEvent = serde_json::from_str(&older).expect("an older coordinator's event decodes");
    assert_eq!(event.seq, None);
    assert_eq!(serde_json::to_string(&event).expect("encodes"), older, "no seq is written for none");
}

// ---------------------------------------------------------------------------------------------
// Conductor
// ---------------------------------------------------------------------------------------------

const EXECUTION_PAYLOAD_ENVELOPE: &str = include_str!("fixtures/execution_payload_envelope.json");

#[test]
fn an_op_node_payload_envelope_is_read_for_its_head_and_kept_byte_for_byte() {
    let text = EXECUTION_PAYLOAD_ENVELOPE.trim_end();
    let envelope = opc_wire::conductor::Envelope::from_json(text).expect("op-node's envelope shape");
    let head = envelope.head();
    assert_eq!(head.number, 0x7a_1200);
    assert_eq!(head.timestamp, 0x6553_f1a4);
    assert_eq!(
        head.parent_hash.to_string(),
        "0x1d2c3b4a59687766554433221100ffeeddccbbaa99887766554433221100ffee"
    );
    assert_eq!(
        head.block_hash.to_string(),
        "0x8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f"
    );
    // Replayed to another node exactly as it came: field order, the beacon root first, all of it.
    assert_eq!(serde_json::to_string(&envelope).expect("encode"), text);
}

#[test]
fn a_failed_leader_check_reads_as_not_the_leader() {
    let message = op_node_errors::leader_check_failed("dial tcp 127.0.0.1:8547: connect: connection refused");
    assert_eq!(
        message,
        "sequencer leader check failed: dial tcp 127.0.0.1:8547: connect: connection refused"
    );
    assert_eq!(AdminError::classify(APPLICATION_ERROR_CODE, &message), AdminError::NotLeader);
    assert_eq!(
        AdminError::classify(APPLICATION_ERROR_CODE, op_node_errors::SEQUENCER_NOT_LEADER),
        AdminError::NotLeader
    );
}
