import CTBusSchema
import Foundation
import SwiftProtobuf
import Testing

@Suite("Schema examples")
struct ExamplesTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Schemas/examples")

    @Test("Schemas/examples holds one valid example of each message type", arguments: [
        ("country-visit-recommendation.json", MessageType.countryVisitRecommendation),
        ("mission-report.json", MessageType.missionReport),
        ("activity-matrix.json", MessageType.activityMatrix),
    ])
    func exampleIsValid(file: String, type: MessageType) throws {
        let data = try Data(contentsOf: Self.folder.appendingPathComponent(file))
        let message = try BusMessage(jsonUTF8Data: data)
        #expect(message.envelope.type == type)
        #expect(message.payload?.messageType == type)
        try MessageValidator.validate(message)
    }
}
