import Crypto
import Foundation
import Synchronization

/// The batch roots one party (the broker, a node) has verified, so that a root is verified once
/// however many of its publications arrive, in whatever order, across reconnects (PROTOCOL.md
/// 7.2, batch signatures).
///
/// Only successes are kept, keyed by the public key (its raw bytes, as the registry gave it for
/// this check, so a key replaced or removed in the registry never reaches its entries again) and
/// the batch id. A claim is taken on trust only when its leaf count, root and signature are all
/// the ones verified; any difference is verified in full and never replaces what is kept. Each
/// key keeps at most `perKey` roots, the oldest leaving first, so a publisher flooding roots evicts
/// only its own; a root evicted is verified again when it comes back.
public final class BatchRoots: Sendable {
    public let perKey: Int
    private let state = Mutex(State())

    public init(perKey: Int = 4096) {
        precondition(perKey > 0)
        self.perKey = perKey
    }

    struct Claim: Equatable {
        let leafCount: UInt32
        let root: Data
        let signature: Data
    }

    struct State {
        var roots: [Data: KeyRoots] = [:]
        var verified = 0
        var reused = 0
    }

    /// One key's roots by batch id, and their ids in the order they were kept.
    struct KeyRoots {
        var claims: [Data: Claim] = [:]
        var order: [Data] = []
        var oldest = 0

        mutating func keep(_ batchId: Data, _ claim: Claim, bound: Int) {
            guard claims[batchId] == nil else { return }
            claims[batchId] = claim
            order.append(batchId)
            if claims.count > bound {
                claims[order[oldest]] = nil
                oldest += 1
            }
            if oldest > bound {
                order.removeFirst(oldest)
                oldest = 0
            }
        }
    }

    /// How many roots this party verified with Ed25519, and how many claims it took from what it
    /// had verified before.
    public var counts: (verified: Int, reused: Int) {
        state.withLock { ($0.verified, $0.reused) }
    }

    /// `body`'s result, with the roots verified and the claims reused while it ran (a party counts
    /// them for its metrics around a batch of checks).
    public func counting<T>(_ body: () throws -> T) rethrows -> (result: T, verified: Int, reused: Int) {
        let before = counts
        let result = try body()
        let after = counts
        return (result, after.verified - before.verified, after.reused - before.reused)
    }

    /// Whether `signature` signs the root `claim` of batch `batchId` under `key`: from what was
    /// verified before when the claim is the same, otherwise by an Ed25519 verification whose
    /// success is kept.
    func verify(_ claim: Claim, batchId: Data, key: Curve25519.Signing.PublicKey) -> Bool {
        let keyBytes = key.rawRepresentation
        let known = state.withLock { state in
            guard state.roots[keyBytes]?.claims[batchId] == claim else { return false }
            state.reused += 1
            return true
        }
        if known { return true }
        let message = BatchTree.rootMessage(key: key, batchId: batchId, leafCount: claim.leafCount, root: claim.root)
        guard key.isValidSignature(claim.signature, for: message) else { return false }
        state.withLock { state in
            state.verified += 1
            state.roots[keyBytes, default: KeyRoots()].keep(batchId, claim, bound: perKey)
        }
        return true
    }
}
