import CTBusSchema
import Crypto
import Foundation
import SwiftProtobuf

/// A publication as its author signed it (PROTOCOL.md 7.2): the exact envelope bytes,
/// the payload with the fields of a partial Member State restriction cleared, and the proof
/// (signature, key id, the digests of the withheld values and the disclosures that carry them).
/// `sign` is the publisher's step; `verify` is the one pure check that the broker (before it
/// stores), every recipient (before it journals), `ctbus journal verify` and the tests all run.
public struct SignedPublication: Sendable, Equatable {
    public var signedEnvelope: Data
    public var payload: Data
    public var proof: Proof

    public init(signedEnvelope: Data, payload: Data, proof: Proof) {
        self.signedEnvelope = signedEnvelope
        self.payload = payload
        self.proof = proof
    }

    /// Signs a validated message: splits off the restricted fields as disclosures (fresh salts),
    /// serializes the envelope once and signs those bytes. `salt` gives 16 random bytes. A sealed
    /// message (`handling.sealed`) is sealed first, to `sealing` (PROTOCOL.md 7.5); use
    /// `signSealed` to keep the content keys.
    public static func sign(_ envelope: Envelope, payload: BusMessage.OneOf_Payload, with key: Curve25519.Signing.PrivateKey,
                            sealing: SealingRecipients? = nil,
                            salt: () -> Data = { Disclosures.randomSalt() }) throws -> SignedPublication {
        try signSealed(envelope, payload: payload, with: key, sealing: sealing, salt: salt).signed
    }

    /// `sign`, also returning the content keys of a sealed message (payload's, then the
    /// disclosures', 32 bytes each; nil when not sealed): the publisher's journal keeps them.
    public static func signSealed(_ envelope: Envelope, payload: BusMessage.OneOf_Payload, with key: Curve25519.Signing.PrivateKey,
                                  sealing: SealingRecipients?,
                                  salt: () -> Data = { Disclosures.randomSalt() }) throws -> (signed: SignedPublication, contentKeys: Data?) {
        var (publication, contentKeys) = try unsigned(envelope, payload: payload, signer: key.publicKey, sealing: sealing, salt: salt)
        publication.proof.signature = try PublicationSignature.sign(envelope: publication.signedEnvelope, payload: publication.payload,
                                                                    digests: publication.proof.digests, with: key)
        return (publication, contentKeys)
    }

    /// A message to sign, with its sealing recipients (nil when it is not sealed).
    public typealias ToSign = (envelope: Envelope, payload: BusMessage.OneOf_Payload, sealing: SealingRecipients?)

    /// Signs messages as `signSealed` does, with one signature per batch of at most `maxLeaves`
    /// (PROTOCOL.md 7.2, batch signatures). Only messages of the same handling (classification,
    /// releasability, Member State restriction, sealing) share a batch, so a batch's size and its
    /// positions tell a recipient only of messages it is entitled to as much as to its own; a
    /// message with no other of its handling gets its own signature, as `sign` gives it. Each
    /// publication verifies alone: its proof carries its path and its batch's signature.
    public static func signBatch(_ messages: [ToSign], with key: Curve25519.Signing.PrivateKey, maxLeaves: Int = 256,
                                 salt: () -> Data = { Disclosures.randomSalt() }) throws -> [(signed: SignedPublication, contentKeys: Data?)] {
        var publications = try messages.map { try unsigned($0.envelope, payload: $0.payload, signer: key.publicKey, sealing: $0.sealing, salt: salt) }
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        var groups: [Data: [Int]] = [:]
        var order: [Data] = []
        for (index, message) in messages.enumerated() {
            let handling = try message.envelope.handling.serializedData(options: options)
            if groups[handling] == nil { order.append(handling) }
            groups[handling, default: []].append(index)
        }
        for indices in order.compactMap({ groups[$0] }) {
            guard indices.count > 1 else {
                let publication = publications[indices[0]].signed
                publications[indices[0]].signed.proof.signature = try PublicationSignature.sign(
                    envelope: publication.signedEnvelope, payload: publication.payload, digests: publication.proof.digests, with: key)
                continue
            }
            let contents = indices.map { index in
                let publication = publications[index].signed
                return PublicationSignature.content(envelope: publication.signedEnvelope, payload: publication.payload,
                                                    digests: publication.proof.digests)
            }
            for (index, signed) in zip(indices, try PublicationSignature.signBatches(contents, maxLeaves: maxLeaves, with: key)) {
                publications[index].signed.proof.signature = signed.signature
                publications[index].signed.proof.batch = signed.path
            }
        }
        return publications
    }

    /// Everything `signSealed` gives but the signature: the disclosures split off, the envelope
    /// serialized once, the payload sealed when the message is.
    static func unsigned(_ envelope: Envelope, payload: BusMessage.OneOf_Payload, signer: Curve25519.Signing.PublicKey,
                         sealing: SealingRecipients?, salt: () -> Data) throws -> (signed: SignedPublication, contentKeys: Data?) {
        let (base, disclosures) = try Disclosures.split(payload, paths: restrictedPaths(of: envelope).sorted(), salt: salt)
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        let envelopeBytes = try envelope.serializedData(options: options)
        var payloadBytes = try base.serialized()
        var proof = Proof()
        proof.digests = disclosures.map(\.digest)
        proof.disclosures = disclosures
        var contentKeys: Data?
        if envelope.handling.sealed {
            guard let sealing else { throw BusError(.sealInvalid, "a sealed message needs its recipients' sealing keys") }
            var content = SealedContent()
            let sealedPayload = try SealedBox.sealKeepingKey(payloadBytes, to: sealing.all,
                                                             context: SealedBox.context(messageId: envelope.messageID, group: "payload"))
            content.payload = sealedPayload.box
            var keys = sealedPayload.contentKey
            if !disclosures.isEmpty {
                var list = DisclosureList()
                list.disclosures = disclosures
                let sealedDisclosures = try SealedBox.sealKeepingKey(
                    try list.serializedData(), to: sealing.whole, context: SealedBox.context(messageId: envelope.messageID, group: "disclosures"))
                content.disclosures = sealedDisclosures.box
                keys += sealedDisclosures.contentKey
            }
            payloadBytes = try content.serializedData(options: options)
            proof.disclosures = [] // they travel sealed
            contentKeys = keys
        }
        guard proof.digests.allSatisfy({ $0.count == 32 }) else { throw PublicationSignature.MalformedDigest() }
        proof.keyID = PublicationSignature.keyId(signer)
        return (SignedPublication(signedEnvelope: envelopeBytes, payload: payloadBytes, proof: proof), contentKeys)
    }

    /// The paths whose values travel as disclosures: those of a PARTIAL restriction.
    public static func restrictedPaths(of envelope: Envelope) -> Set<String> {
        let restriction = envelope.handling.memberStateRestriction
        return restriction.scope == .partial ? Set(restriction.fieldPaths) : []
    }

    /// The same publication without the disclosures of `paths`: a recipient's copy under a
    /// partial restriction. The signature and digests stay; only the values go.
    public func withholding(_ paths: some Collection<String>) -> SignedPublication {
        var copy = self
        copy.proof = proof.withholding(paths)
        return copy
    }
}

extension Proof {
    /// The proof without the disclosures of `paths`: what a node outside a partial restriction's
    /// allowed list receives (the broker's forwarding and the tests use this one step).
    public func withholding(_ paths: some Collection<String>) -> Proof {
        guard !paths.isEmpty else { return self }
        var copy = self
        copy.disclosures.removeAll { paths.contains($0.path) }
        return copy
    }
}

/// A publication whose signature and disclosures were checked.
public struct VerifiedPublication: Sendable {
    public let envelope: Envelope
    /// The payload as this copy holds it: the signed payload with the disclosures received put back.
    public let payload: BusMessage.OneOf_Payload
    /// Restricted paths whose values this copy does not hold (withheld from this node), sorted.
    public let withheldPaths: [String]
    /// Restricted paths of which this copy holds a value (of at least one element), sorted.
    public let disclosedPaths: [String]
    /// The key the signature verified with.
    public let keyId: String
    /// Whether the message crossed the broker sealed.
    public let sealed: Bool
    /// A sealed message's content keys as opened here (the payload's, then the disclosures' when
    /// this node may open them): what a journal keeps to check its copy later.
    public let contentKeys: Data?
}

/// How to reach the plaintext of a sealed publication. Unchecked Sendable: swift-crypto does not
/// declare its private keys Sendable, but a key is never changed once made, so checks running side
/// by side may share one.
public enum SealOpening: @unchecked Sendable {
    /// As a recipient, with its sealing secret key.
    case recipient(nodeId: String, key: Curve25519.KeyAgreement.PrivateKey)
    /// With the content keys a journal kept (`VerifiedPublication.contentKeys`).
    case contentKeys(Data)
}

/// Who a sealed publication is sealed to: every recipient the policy decides, and among them
/// those that receive the restricted fields (PROTOCOL.md 7.5). The publisher computes it from its
/// registry copy; the broker refuses a publication sealed to any other set.
public struct SealingRecipients {
    public let all: [(nodeId: String, key: Curve25519.KeyAgreement.PublicKey)]
    public let whole: [(nodeId: String, key: Curve25519.KeyAgreement.PublicKey)]

    public init(all: [(nodeId: String, key: Curve25519.KeyAgreement.PublicKey)],
                whole: [(nodeId: String, key: Curve25519.KeyAgreement.PublicKey)]) {
        self.all = all
        self.whole = whole
    }

    /// From `ConfidentialityPolicy.decide` over `registry`, with the registry's sealing keys.
    public static func decide(_ envelope: Envelope, originator: String, registry: NodeRegistry,
                              at now: Date = Date()) throws(BusError) -> SealingRecipients {
        var all: [(nodeId: String, key: Curve25519.KeyAgreement.PublicKey)] = []
        var whole: [(nodeId: String, key: Curve25519.KeyAgreement.PublicKey)] = []
        for (node, decision) in ConfidentialityPolicy.decide(envelope, originator: originator, among: registry.profiles, at: now) {
            guard case .deliver(let paths) = decision else { continue }
            guard let key = registry.sealingKey(of: node.id) else {
                throw BusError(.sealInvalid, "node \(node.id) has no sealing key in the registry")
            }
            all.append((node.id, key))
            if paths.isEmpty { whole.append((node.id, key)) }
        }
        return SealingRecipients(all: all, whole: whole)
    }
}

extension SignedPublication {
    /// Checks, in this order: the envelope decodes; the originator has a signing key in
    /// `signingKey` and the proof names it (UNKNOWN_SIGNING_KEY); the signature verifies over the
    /// signed bytes (SIGNATURE_INVALID); the payload decodes as the envelope's type; the signed
    /// payload holds no value of a restricted field, the digests are exactly one per restricted
    /// field (one per activity for `activities.*`), and each disclosure matches a digest, comes
    /// once and applies (DISCLOSURE_MISMATCH). `originator`: the node that must have signed (the
    /// broker's publisher; NOT_PERMITTED otherwise). `whole`: every disclosure must be there (the
    /// broker's check of a Publish). Throws a `BusError` with the message id when it can read one.
    /// A sealed message is opened with `opening` after the signature check, and its content is
    /// checked the same way (SEALED_TO_MISMATCH: not sealed to this node; SEAL_INVALID: does not
    /// decode or open).
    public func verify(signingKey: (String) -> Curve25519.Signing.PublicKey?, previousKey: PreviousKeyLookup = { _, _ in nil },
                       originator: String? = nil, whole: Bool = false, opening: SealOpening? = nil,
                       roots: BatchRoots? = nil) throws(BusError) -> VerifiedPublication {
        let (envelope, keyId) = try verifySignature(signingKey: signingKey, previousKey: previousKey, originator: originator, roots: roots)
        return try verifyContents(envelope: envelope, keyId: keyId, whole: whole, opening: opening)
    }

    /// The checks of `verify` that follow the signature's, for an `envelope` and `keyId` that
    /// `verifySignature` returned.
    public func verifyContents(envelope: Envelope, keyId: String, whole: Bool = false,
                               opening: SealOpening? = nil) throws(BusError) -> VerifiedPublication {
        let messageId = MessageValidator.echoable(envelope.messageID)
        func fail(_ code: ErrorCode, _ detail: String) -> BusError { BusError(code, detail, messageId: messageId) }
        let (payload, disclosures, contentKeys) = try contents(of: envelope, opening: opening)
        let base: BusMessage.OneOf_Payload
        do {
            base = try BusMessage.OneOf_Payload.decode(type: envelope.type, bytes: payload, canonical: true)
        } catch {
            throw fail(error.code, error.detail)
        }
        let restricted = Self.restrictedPaths(of: envelope)
        // `base` was decoded from its canonical encoding, so a field it holds cleared is absent
        // from the signed bytes too.
        guard Redactor.redact(base, paths: Array(restricted)) == base else {
            throw fail(.disclosureMismatch, "the signed payload holds a value of a restricted field")
        }
        var expected: [String: Int] = [:]
        for path in restricted {
            guard RedactablePaths.paths(for: envelope.type).contains(path) else {
                throw fail(.validationFailed, "a restriction path is not a redactable path of \(envelope.type.name)")
            }
            if path.hasPrefix("activities."), case .activityMatrix(let matrix) = base {
                expected[path] = matrix.activities.count
            } else {
                expected[path] = 1
            }
        }
        let digests = Set(proof.digests)
        guard digests.count == proof.digests.count, proof.digests.count == expected.values.reduce(0, +) else {
            throw fail(.disclosureMismatch, "signed \(proof.digests.count) disclosure digests; the restriction has \(expected.values.reduce(0, +)) values, each signed once")
        }
        for disclosure in disclosures where !digests.contains(disclosure.digest) {
            let named = restricted.contains(disclosure.path) ? disclosure.path : "of an unrestricted path"
            throw fail(.disclosureMismatch, "a disclosure \(named) matches no signed digest")
        }
        let disclosed: BusMessage.OneOf_Payload
        do {
            disclosed = try Disclosures.apply(disclosures, to: base, restricted: restricted)
        } catch .notCanonical(let path) {
            throw fail(.nonCanonical, Disclosures.Failure.notCanonical(path: path).description)
        } catch {
            throw fail(.disclosureMismatch, error.description)
        }
        var received: [String: Int] = [:]
        for disclosure in disclosures { received[disclosure.path, default: 0] += 1 }
        let withheld = expected.filter { received[$0.key, default: 0] < $0.value }.keys.sorted()
        if whole, !withheld.isEmpty {
            throw fail(.disclosureMismatch, "the disclosures of \(withheld.joined(separator: ", ")) are missing")
        }
        return VerifiedPublication(envelope: envelope, payload: disclosed, withheldPaths: withheld,
                                   disclosedPaths: received.keys.sorted(), keyId: keyId,
                                   sealed: envelope.handling.sealed, contentKeys: contentKeys)
    }

    /// The signature check alone: the envelope decodes, its originator is `originator` when one
    /// is given, the proof names the originator's key (or a previous key of the originator, for a
    /// message created before that key was retired) and the signature verifies. What the broker
    /// checks of a sealed publication, whose content it cannot read.
    public func verifySignature(signingKey: (String) -> Curve25519.Signing.PublicKey?, previousKey: PreviousKeyLookup = { _, _ in nil },
                                originator: String? = nil, roots: BatchRoots? = nil) throws(BusError) -> (envelope: Envelope, keyId: String) {
        let salvaged = FrameSalvage.messageId(inEnvelope: ArraySlice(signedEnvelope))
        let envelope = try Self.decodeSigned(Envelope.self, signedEnvelope, undecodable: BusError(
            .malformedFrame, "signed_envelope is not an Envelope (a field is not valid protobuf or not UTF-8)", messageId: salvaged),
            notCanonical: "signed_envelope is not the canonical encoding of the Envelope it decodes to", messageId: salvaged)
        let messageId = MessageValidator.echoable(envelope.messageID)
        func fail(_ code: ErrorCode, _ detail: String) -> BusError { BusError(code, detail, messageId: messageId) }
        if let originator, envelope.originator != originator {
            throw fail(.notPermitted, "envelope.originator must be the publishing node \(originator): a node publishes only as itself")
        }
        guard MessageValidator.isNodeId(envelope.originator) else { throw fail(.validationFailed, "envelope.originator is not a node id") }
        guard let current = signingKey(envelope.originator) else {
            throw fail(.unknownSigningKey, "originator \(envelope.originator) has no signing key in the registry")
        }
        let key = try Self.key(named: proof.keyID, current: current, previous: previousKey, of: envelope.originator,
                               signedAt: envelope.createdAt.date, messageId: messageId)
        let keyId = proof.keyID
        guard !proof.signature.isEmpty else { throw fail(.signatureInvalid, "the publication carries no signature") }
        guard proof.hasBatch else {
            guard PublicationSignature.verify(proof.signature, envelope: signedEnvelope, payload: payload, digests: proof.digests, key: key) else {
                throw fail(.signatureInvalid, "the signature of \(envelope.originator) does not verify over the signed bytes")
            }
            return (envelope, keyId)
        }
        guard proof.digests.allSatisfy({ $0.count == 32 }) else { throw fail(.signatureInvalid, "a disclosure digest is not 32 bytes") }
        do {
            try BatchTree.checkShape(proof.batch)
        } catch {
            throw fail(.signatureInvalid, "the batch path: \(error)")
        }
        let content = PublicationSignature.content(envelope: signedEnvelope, payload: payload, digests: proof.digests)
        let verifies: Bool
        do {
            verifies = try PublicationSignature.verify(proof.signature, batch: proof.batch, content: content, key: key, roots: roots)
        } catch {
            throw fail(.signatureInvalid, "the batch path: \(error)")
        }
        guard verifies else {
            throw fail(.signatureInvalid, "the batch signature of \(envelope.originator) does not verify over the root its path leads to")
        }
        return (envelope, keyId)
    }

    /// The payload bytes and disclosures of the publication: as they travel for an unsealed one,
    /// opened for a sealed one (and the content keys opened).
    func contents(of envelope: Envelope, opening: SealOpening?) throws(BusError) -> (payload: Data, disclosures: [Disclosure], keys: Data?) {
        let messageId = MessageValidator.echoable(envelope.messageID)
        func fail(_ code: ErrorCode, _ detail: String) -> BusError { BusError(code, detail, messageId: messageId) }
        guard envelope.handling.sealed else { return (payload, proof.disclosures, nil) }
        guard proof.disclosures.isEmpty else { throw fail(.sealInvalid, "a sealed publication carries its disclosures sealed, not in the proof") }
        let content = try Self.sealedContent(payload, messageId: messageId)
        guard let opening else { throw fail(.sealInvalid, "a sealed publication cannot be read without a key") }
        func open(_ box: SealedBox, _ group: String, keyAt index: Int) throws(BusError) -> (plaintext: Data, key: Data)? {
            let context = SealedBox.context(messageId: envelope.messageID, group: group)
            do throws(SealedBox.Failure) {
                switch opening {
                case .recipient(let nodeId, let key):
                    let opened = try box.openKeepingKey(as: nodeId, with: key, context: context)
                    return (opened.plaintext, opened.contentKey)
                case .contentKeys(let keys):
                    guard keys.count >= (index + 1) * 32 else { return nil }
                    let key = keys.subdata(in: keys.startIndex + index * 32..<keys.startIndex + (index + 1) * 32)
                    return (try box.open(contentKey: key, context: context), key)
                }
            } catch .notARecipient {
                return nil
            } catch .notCommitted {
                throw fail(.sealInvalid, "the sealed \(group) opens only with a content key other than the one its signed commitment names")
            } catch {
                throw fail(.sealInvalid, "the sealed \(group) does not open")
            }
        }
        guard let opened = try open(content.payload, "payload", keyAt: 0) else {
            throw fail(.sealedToMismatch, "the message is not sealed to this node")
        }
        var disclosures: [Disclosure] = []
        var keys = opened.key
        if content.hasDisclosures, let list = try open(content.disclosures, "disclosures", keyAt: 1) {
            let decoded = try Self.decodeSigned(DisclosureList.self, list.plaintext,
                                                undecodable: fail(.sealInvalid, "the sealed disclosures are not a DisclosureList"),
                                                notCanonical: "the sealed disclosures are not the canonical encoding of their DisclosureList",
                                                messageId: messageId)
            disclosures = decoded.disclosures
            keys += list.key
        }
        return (opened.plaintext, disclosures, keys)
    }

    /// The `SealedContent` of a sealed publication's signed payload: canonical, with a payload
    /// box, and every box carrying a 32-byte key commitment (what the broker can check of
    /// sealed content; the recipients check the commitment against the key they unwrap).
    public static func sealedContent(_ payload: Data, messageId: String?) throws(BusError) -> SealedContent {
        let content = try decodeSigned(SealedContent.self, payload, undecodable: BusError(
            .sealInvalid, "the payload of a sealed publication is not SealedContent", messageId: messageId),
            notCanonical: "the payload of a sealed publication is not the canonical encoding of its SealedContent", messageId: messageId)
        guard content.hasPayload else {
            throw BusError(.sealInvalid, "the payload of a sealed publication has no sealed payload", messageId: messageId)
        }
        for box in [content.payload] + (content.hasDisclosures ? [content.disclosures] : []) where box.keyCommitment.count != 32 {
            throw BusError(.sealInvalid, "a sealed box carries no 32-byte key commitment", messageId: messageId)
        }
        return content
    }

    /// Decodes a signed part as `M`: `undecodable` when the bytes are not an `M`, NON_CANONICAL
    /// saying `notCanonical` when they are not its canonical encoding (PROTOCOL.md 7.2).
    static func decodeSigned<M: SwiftProtobuf.Message>(_: M.Type, _ bytes: Data, undecodable: @autoclosure () -> BusError,
                                                      notCanonical detail: String, messageId: String?) throws(BusError) -> M {
        do throws(Canonical.Failure) {
            return try Canonical.decode(M.self, from: bytes)
        } catch .undecodable {
            throw undecodable()
        } catch {
            throw BusError(.nonCanonical, detail, messageId: messageId)
        }
    }

    /// The key `keyId` names among `node`'s current key and its previous ones: a previous key
    /// only for what was signed (by the signed time) before it was retired. UNKNOWN_SIGNING_KEY
    /// otherwise.
    static func key(named keyId: String, current: Curve25519.Signing.PublicKey, previous: PreviousKeyLookup, of node: String,
                    signedAt: Date, messageId: String?) throws(BusError) -> Curve25519.Signing.PublicKey {
        let currentId = PublicationSignature.keyId(current)
        if keyId == currentId { return current }
        let named = keyId.utf8.count == 16 && keyId.allSatisfy(\.isHexDigit) ? "key \(keyId)" : "an unreadable key id"
        guard let (key, retiredAt) = previous(node, keyId) else {
            throw BusError(.unknownSigningKey, "signed with \(named); the registry's signing key of \(node) is \(currentId)", messageId: messageId)
        }
        guard signedAt < retiredAt else {
            throw BusError(.unknownSigningKey, "signed with \(named), which \(node) retired at \(UTCTime.iso8601(retiredAt)), "
                           + "for something dated after that; its signing key is \(currentId)", messageId: messageId)
        }
        return key
    }
}

/// Finds a previous signing key of a node by key id, with when it was retired
/// (`NodeRegistry.previousSigningKey(of:keyId:)`).
public typealias PreviousKeyLookup = (_ node: String, _ keyId: String) -> (key: Curve25519.Signing.PublicKey, retiredAt: Date)?
