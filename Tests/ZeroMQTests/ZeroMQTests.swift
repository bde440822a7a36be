import Foundation
import Testing
import ZeroMQ

@Suite("ZeroMQ binding")
struct ZeroMQTests {
    @Test("libzmq is 4.x with CURVE")
    func library() {
        #expect(ZMQContext.libraryVersion.major == 4)
        #expect(ZMQContext.has("curve"))
    }

    @Test("Z85 round-trips and refuses text outside the alphabet")
    func z85() throws {
        let bytes: [UInt8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]
        let text = try #require(Z85.encode(bytes))
        #expect(text == "HelloWorld") // the example of RFC 32
        #expect(Z85.decode(text) == bytes)
        #expect(Z85.decode("Hello Worl") == nil)
        #expect(Z85.decode("abc") == nil)
    }

    @Test("CURVE key pairs: the public key follows from the secret key; key files are private")
    func keys() throws {
        let pair = try CurveKeyPair.generate()
        #expect(pair.publicKey.utf8.count == 40)
        #expect(CurveKeyPair(secretKey: pair.secretKey) == pair)
        #expect(CurveKeyPair(secretKey: "not a key") == nil)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zmq-keys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let files = try pair.write(toFolder: folder, name: "node")
        let mode = try FileManager.default.attributesOfItem(atPath: files.secretKeyFile)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try CurveKeyPair(secretKeyFile: files.secretKeyFile) == pair)
        #expect(try CurveKeyPair.publicKey(fromFile: files.publicKeyFile) == pair.publicKey)
        #expect(throws: (any Error).self) { try pair.write(toFolder: folder, name: "node") } // never overwrites
        #expect(throws: KeyFileError.self) { try CurveKeyPair(secretKeyFile: folder + "/missing.key") }
    }

    @Test("Multipart messages over inproc, with poll and non-blocking receive")
    func multipart() throws {
        let context = try ZMQContext()
        let server = try ZMQSocket(context: context, type: .router)
        try server.bind("inproc://multipart")
        let client = try ZMQSocket(context: context, type: .dealer)
        try client.connect("inproc://multipart")
        #expect(try server.receive(dontWait: true) == nil)
        try client.send([[1, 2, 3], [], [4]])
        #expect(try ZMQSocket.poll([server], timeoutMilliseconds: 5_000) == [true])
        let received = try #require(try server.receive())
        #expect(Array(received.frames.dropFirst()) == [[1, 2, 3], [], [4]])
        try server.send([received.frames[0], [9]])
        #expect(try ZMQSocket.poll([client], timeoutMilliseconds: 5_000) == [true])
        #expect(try client.receive()?.frames == [[9]])
    }

    @Test("Errors are typed: a bad endpoint names the call and the errno")
    func typedErrors() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .router)
        do {
            try socket.bind("nonsense://here")
            Issue.record("bound a nonsense endpoint")
        } catch {
            #expect(error.operation.contains("zmq_bind"))
            #expect(error.code != 0)
        }
        socket.close()
        #expect(throws: ZMQError.self) { try socket.send([[1]]) }
    }

    @Test("The ZAP handler answers per RFC 27 and refuses malformed requests")
    func zapReplies() {
        let key = [UInt8](repeating: 7, count: 32)
        let request: [[UInt8]] = [Array("1.0".utf8), Array("42".utf8), Array("ctbus".utf8), Array("127.0.0.1".utf8), [],
                                  Array("CURVE".utf8), key]
        let allowed = ZAPHandler.replyForTesting(to: request) { request in
            #expect(request.curvePublicKey == Z85.encode(key))
            return .allow(userId: "oct")
        }
        #expect(allowed.count == 6)
        #expect(String(decoding: allowed[2], as: UTF8.self) == "200")
        #expect(String(decoding: allowed[4], as: UTF8.self) == "oct")
        let denied = ZAPHandler.replyForTesting(to: request) { _ in .deny(reason: "no") }
        #expect(String(decoding: denied[2], as: UTF8.self) == "400")
        let malformed = ZAPHandler.replyForTesting(to: [Array("2.0".utf8)]) { _ in .allow(userId: "x") }
        #expect(String(decoding: malformed[2], as: UTF8.self) == "500")
    }
}
