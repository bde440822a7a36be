import CTBusPolicy
import CTBusSchema
import Foundation
import Testing

@Suite("Node registry")
struct NodeRegistryTests {
    static let key1 = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
    static let key2 = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"

    static let sign1 = "p0B7ekyCyzwkOglfTspoU1giqrHJiafUcQ7mr4KAqgo", seal1 = "_MrgYx7oD30hmPeXAyrpAbbKzQaTnUIfzWAm_NO6hgE"
    static let sign2 = "dFG3zP-QCm31Y8Z1D6J7xocAVNos_LasE31CTQLDvgg", seal2 = "mFjwDmkKq52zaMdbXWxglKYuw38S1qtWaUXH3KFg-yY"
    /// A node written with key3 gets no signing or sealing key added: for the cases about them.
    static let key3 = "e<>^9a#Dm!Gl(Q2)bT2pH:K%*Cq4VJ+fWs[0&xz8"

    /// The registry JSON of `nodes`; a node with key1 or key2 as its CURVE key gets its signing and sealing keys added.
    static func json(_ nodes: String) -> Data {
        let withKeys = nodes
            .replacingOccurrences(of: "\"publicKey\": \"\(key1)\"", with: "\"publicKey\": \"\(key1)\", \"signingKey\": \"\(sign1)\", \"sealingKey\": \"\(seal1)\"")
            .replacingOccurrences(of: "\"publicKey\": \"\(key2)\"", with: "\"publicKey\": \"\(key2)\", \"signingKey\": \"\(sign2)\", \"sealingKey\": \"\(seal2)\"")
        return Data("{\"nodes\": [\(withKeys)]}".utf8)
    }

    @Test("A registry file parses with role defaults")
    func parses() throws {
        let registry = try NodeRegistry(json: Self.json("""
            {"id": "oct", "role": "oct", "clearance": "STRICTLY_CONFIDENTIAL", "groups": ["un-secretariat"], "publicKey": "\(Self.key1)"},
            {"id": "wg-border", "role": "working-group", "clearance": "CONFIDENTIAL", "publicKey": "\(Self.key2)", "themes": ["border-security"]}
            """))
        #expect(registry.entry(id: "oct")?.profile.mayPublish == [.activityMatrix, .missionReport])
        #expect(registry.entry(publicKey: Self.key2)?.profile.id == "wg-border")
        #expect(registry.entry(id: "wg-border")?.profile.mayPublish.isEmpty == true)
        #expect(try NodeRegistry(json: try registry.json()).profiles == registry.profiles)
    }

    @Test("Mistakes in a registry are refused with a message naming the node", arguments: [
        ("{\"id\": \"oct\", \"role\": \"boss\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\"}", "role must be one of"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"SECRET\", \"publicKey\": \"\(key1)\"}", "clearance must be"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"short\", \"signingKey\": \"\(sign1)\", \"sealingKey\": \"\(seal1)\"}", "publicKey must be"),
        ("{\"id\": \"wg\", \"role\": \"working-group\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\", \"mayPublish\": [\"ACTIVITY_MATRIX\"]}",
         "may not publish ACTIVITY_MATRIX"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\"}, {\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key2)\"}",
         "appears twice"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\"}, {\"id\": \"cted\", \"role\": \"cted\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\"}",
         "already used"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\", \"groups\": [\"cted\"]}, {\"id\": \"cted\", \"role\": \"cted\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key2)\"}",
         "has the name of a node"),
        ("{\"id\": \"oct\", \"role\": \"oct\"}", "missing field"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(String(repeating: "#", count: 40))\", \"signingKey\": \"\(sign1)\", \"sealingKey\": \"\(seal1)\"}",
         "node oct: publicKey must be a 40-character Z85"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(String(repeating: "~", count: 40))\", \"signingKey\": \"\(sign1)\", \"sealingKey\": \"\(seal1)\"}",
         "node oct: publicKey must be a 40-character Z85"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearence\": \"CONFIDENTIAL\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\"}",
         "node oct: unknown field clearence"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\", \"groups\": [\"oct\"]}",
         "node oct: groups: the node names itself"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\", \"nextPublicKey\": \"\(key1)\"}",
         "node oct: nextPublicKey is the same as publicKey"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\"}, {\"id\": \"cted\", \"role\": \"cted\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key2)\", \"nextPublicKey\": \"\(key1)\"}",
         "node cted: nextPublicKey is already used by node oct"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": ", "not a valid registry"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key3)\", \"sealingKey\": \"\(seal1)\"}",
         "node oct: signingKey is required"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key3)\", \"signingKey\": \"\(sign1)\", \"sealingKey\": \"\(key1)\"}",
         "node oct: sealingKey must be a 32-byte public key in base64url"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key3)\", \"signingKey\": \"\(sign1)\", \"sealingKey\": \"\(sign1)\"}",
         "node oct: sealingKey is the same key as signingKey of node oct"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\"}, {\"id\": \"cted\", \"role\": \"cted\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key3)\", \"signingKey\": \"\(sign1)\", \"sealingKey\": \"\(seal2)\"}",
         "node cted: signingKey is the same key as signingKey of node oct"),
    ])
    func refused(nodes: String, expected: String) {
        do {
            _ = try NodeRegistry(json: Self.json(nodes))
            Issue.record("accepted a bad registry")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }

    @Test("The changes between two registries name each node and field, for the broker's registry audit")
    func changes() throws {
        let before = try NodeRegistry(json: Self.json("""
            {"id": "oct", "role": "oct", "clearance": "STRICTLY_CONFIDENTIAL", "groups": ["un-secretariat"], "publicKey": "\(Self.key1)"},
            {"id": "wg-border", "role": "working-group", "clearance": "CONFIDENTIAL", "publicKey": "\(Self.key2)"}
            """))
        let key3 = Self.key3
        #expect(NodeRegistry.isCurveKey(key3))
        let after = try NodeRegistry(json: Self.json("""
            {"id": "oct", "role": "oct", "clearance": "CONFIDENTIAL", "groups": ["un-secretariat", "compact"], "publicKey": "\(Self.key1)", "nextPublicKey": "\(key3)",
             "themes": ["border-security"]},
            {"id": "wg-new", "role": "working-group", "clearance": "CONFIDENTIAL", "publicKey": "\(Self.key2)"}
            """))
        #expect(after.changes(from: before).map(\.description) == [
            "changed oct: clearance STRICTLY_CONFIDENTIAL -> CONFIDENTIAL; groups +compact; themes +border-security; nextPublicKey added",
            "added wg-new", "removed wg-border",
        ])
        #expect(after.changes(from: after).isEmpty)
        #expect(after.entry(publicKey: key3)?.profile.id == "oct")
        let keyOnly = RegistryChange(nodeId: "oct", kind: .changed, details: ["nextPublicKey added"])
        #expect(!keyOnly.changesEntitlement)
        #expect(after.changes(from: before)[0].changesEntitlement)
    }
}
