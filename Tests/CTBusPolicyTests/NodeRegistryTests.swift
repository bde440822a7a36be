import CTBusPolicy
import CTBusSchema
import Foundation
import Testing

@Suite("Node registry")
struct NodeRegistryTests {
    static let key1 = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
    static let key2 = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"

    static func json(_ nodes: String) -> Data { Data("{\"nodes\": [\(nodes)]}".utf8) }

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
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"short\"}", "publicKey must be"),
        ("{\"id\": \"wg\", \"role\": \"working-group\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\", \"mayPublish\": [\"ACTIVITY_MATRIX\"]}",
         "may not publish ACTIVITY_MATRIX"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\"}, {\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key2)\"}",
         "appears twice"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\"}, {\"id\": \"cted\", \"role\": \"cted\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\"}",
         "already used"),
        ("{\"id\": \"oct\", \"role\": \"oct\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key1)\", \"groups\": [\"cted\"]}, {\"id\": \"cted\", \"role\": \"cted\", \"clearance\": \"CONFIDENTIAL\", \"publicKey\": \"\(key2)\"}",
         "has the name of a node"),
        ("{\"id\": \"oct\", \"role\": \"oct\"}", "missing field"),
    ])
    func refused(nodes: String, expected: String) {
        do {
            _ = try NodeRegistry(json: Self.json(nodes))
            Issue.record("accepted a bad registry")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
        }
    }
}
