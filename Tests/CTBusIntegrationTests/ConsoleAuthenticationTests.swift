import CTBusConsole
import CTBusJournal
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Foundation
import InMemoryLogging
import Logging
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A console bound to all addresses: only with a users file (bcrypt hashes written by
/// `ctbus console-user`) or a token file, and then every request needs valid credentials.
@Suite("Console authentication", .serialized, .busSlot)
struct ConsoleAuthenticationTests {
    static func basic(_ user: String, _ password: String) -> [String: String] {
        ["Authorization": "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()]
    }

    @Test("Off loopback: no credentials, a wrong password or token get 401 and a Basic challenge; users and tokens get in; a form token is bound to its user")
    func signIn() async throws {
        let folder = try JournalIntegrityTests.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let users = folder.appendingPathComponent("console-users").path
        for (name, password) in [("alice", "correct horse battery"), ("bob", "staple tuna violin")] {
            let added = try await CommandLineTests.run(["console-user", name, "--users-file", users], input: password + "\n")
            #expect(added.status == 0 && added.output.contains("added \(name)"), "\(added.errors)")
        }
        #expect(PrivateFiles.mode(of: users) == 0o600)
        let text = try String(contentsOfFile: users, encoding: .utf8)
        #expect(!text.contains("correct horse") && text.contains("alice:$2b$12$"))
        let tokens = folder.appendingPathComponent("console-tokens").path
        let token = String(repeating: "7f", count: 24)
        try PrivateFiles.createFile(tokens)
        try Data("# the office's reporting system\n\(token)\n".utf8).write(to: URL(fileURLWithPath: tokens))

        let authentication = try ConsoleAuthentication.load(usersFile: users, tokenFile: tokens)
        let journal = try NodeJournal(path: folder.appendingPathComponent("oct.journal.sqlite").path)
        try await ConsoleTests.serving(journal, node: "oct", clearance: .strictlyConfidential, host: "0.0.0.0",
                                       authentication: authentication) { base in
            let anonymous = ConsoleComposeTests.Browser(base)
            let refused = try await anonymous.request("GET", "/journal")
            #expect(refused.status == 401 && refused.headers["www-authenticate"]?.hasPrefix("Basic realm=") == true)
            #expect(refused.headers["content-security-policy"] != nil)
            #expect(try await anonymous.request("GET", "/journal", headers: Self.basic("alice", "wrong password!")).status == 401)
            #expect(try await anonymous.request("GET", "/journal", headers: Self.basic("mallory", "correct horse battery")).status == 401)
            #expect(try await anonymous.request("GET", "/journal", headers: Self.basic("alice", "correct horse battery")).status == 200)
            let api = try await anonymous.request("GET", "/api/v1/messages", headers: ["Authorization": "Bearer \(token)"])
            #expect(api.status == 200)
            let wrongToken = try await anonymous.request("GET", "/api/v1/messages", headers: ["Authorization": "Bearer \(token.dropLast())0"])
            #expect(wrongToken.status == 401 && wrongToken.body.contains("UNAUTHORIZED"))

            // Alice's form token does not work for Bob, with the same browser cookie.
            let browser = ConsoleComposeTests.Browser(base)
            let aliceToken = try await browser.token("/compose/mission-report", headers: Self.basic("alice", "correct horse battery"))
            let asBob = try await browser.request("POST", "/compose/mission-report", form: ConsoleComposeTests.missionReport(aliceToken),
                                                  headers: Self.basic("bob", "staple tuna violin"))
            #expect(asBob.status == 403)
            let asAlice = try await browser.request("POST", "/compose/mission-report", form: ConsoleComposeTests.missionReport(aliceToken),
                                                    headers: Self.basic("alice", "correct horse battery"))
            #expect(asAlice.status == 303)
        }
        #expect(try journal.count() == 1)

        // Bob leaves; his password no longer opens anything once the console reads the file again.
        let removed = try await CommandLineTests.run(["console-user", "bob", "--remove", "--users-file", users])
        #expect(removed.status == 0)
        let reloaded = try ConsoleAuthentication.load(usersFile: users, tokenFile: nil)
        try await ConsoleTests.serving(journal, node: "oct", clearance: .strictlyConfidential, host: "0.0.0.0", authentication: reloaded) { base in
            let browser = ConsoleComposeTests.Browser(base)
            let page = try await browser.request("GET", "/journal", headers: Self.basic("bob", "staple tuna violin"))
            #expect(page.status == 401)
        }
    }

    @Test("A name the console is not known by gets 421 (DNS rebinding); a form posted from another site's page is refused; repeated wrong passwords block the name and the address, the right password included, and the log says so once")
    func requestGuards() async throws {
        let folder = try JournalIntegrityTests.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let users = folder.appendingPathComponent("console-users").path
        for (name, password) in [("alice", "correct horse battery"), ("bob", "staple tuna violin")] {
            #expect(try await CommandLineTests.run(["console-user", name, "--users-file", users], input: password + "\n").status == 0)
        }
        let handler = InMemoryLogHandler()
        let logger = Logger(label: "ctbus.console", factory: { _ in handler })
        let journal = try NodeJournal(path: folder.appendingPathComponent("oct.journal.sqlite").path)
        let alice = Self.basic("alice", "correct horse battery")
        try await ConsoleTests.serving(journal, node: "oct", clearance: .strictlyConfidential, host: "0.0.0.0",
                                       allowedHosts: ["console.example.org"],
                                       authentication: try ConsoleAuthentication.load(usersFile: users, tokenFile: nil), logger: logger) { base in
            let port = base.port!
            let browser = ConsoleComposeTests.Browser(base)
            // A page of attacker.example whose name now points at this machine: refused before anything is read.
            for host in ["attacker.example:\(port)", "console.example.org.attacker.example", "localhost.attacker.example:\(port)"] {
                let rebound = try await browser.request("GET", "/journal", headers: alice.merging(["Host": host]) { $1 })
                #expect(rebound.status == 421 && rebound.body.contains("does not answer to the name"), "\(host): \(rebound.status)")
            }
            for host in ["console.example.org:\(port)", "CONSOLE.Example.org.", "localhost:\(port)", "127.0.0.1:\(port)", "[::1]:\(port)"] {
                #expect(try await browser.request("GET", "/journal", headers: alice.merging(["Host": host]) { $1 }).status == 200, "\(host)")
            }

            // A valid form token sent from another site's page, without Origin: refused, nothing written.
            let token = try await browser.token("/compose/mission-report", headers: alice)
            let foreign = try await browser.request("POST", "/compose/mission-report", form: ConsoleComposeTests.missionReport(token),
                                                    headers: alice.merging(["Referer": "http://attacker.example/innocent-page"]) { $1 })
            #expect(foreign.status == 403 && foreign.body.contains("not this console"))
            #expect(try journal.count() == 0)
            let own = try await browser.request("POST", "/compose/mission-report", form: ConsoleComposeTests.missionReport(token),
                                                headers: alice.merging(["Referer": "\(base.absoluteString)/compose/mission-report"]) { $1 })
            #expect(own.status == 303)
            #expect(try journal.count() == 1)

            // Guessing Bob's password: five wrong ones are merely refused, the sixth starts a block.
            for _ in 0..<6 {
                #expect(try await browser.request("GET", "/journal", headers: Self.basic("bob", "wrong guess")).status == 401)
            }
            let blocked = try await browser.request("GET", "/journal", headers: Self.basic("bob", "staple tuna violin"))
            #expect(blocked.status == 429 && Int(blocked.headers["retry-after"] ?? "") ?? 0 >= 1, "\(blocked.status)")
            // The address is blocked too: another name from it waits as well.
            #expect(try await browser.request("GET", "/journal", headers: alice).status == 429)
            let api = try await browser.request("GET", "/api/v1/messages", headers: alice)
            #expect(api.status == 429 && api.body.contains("TOO_MANY_ATTEMPTS"))
        }
        let throttling = handler.entries.filter { "\($0.message)".contains("throttles sign-in") }
        #expect(throttling.count == 1)
        #expect(throttling.first?.metadata["user"].map { "\($0)" } == "bob")
    }

    @Test("Bad credential files and addresses: the console does not start, and says which file, line and fix")
    func badFiles() async throws {
        let folder = try JournalIntegrityTests.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let journal = try NodeJournal(path: folder.appendingPathComponent("oct.journal.sqlite").path)
        #expect(throws: ConfigurationError.self) {
            _ = try ConsoleServer(nodeId: "oct", clearance: .unclassified, journal: journal, host: "0.0.0.0", port: 8470)
        }
        func failure(users: String? = nil, tokens: String? = nil, mode: mode_t = 0o600) -> String {
            var usersPath: String?
            var tokensPath: String?
            for (content, name) in [(users, "users"), (tokens, "tokens")] {
                guard let content else { continue }
                let path = folder.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(6))").path
                _ = FileManager.default.createFile(atPath: path, contents: Data(content.utf8))
                chmod(path, mode)
                if name == "users" { usersPath = path } else { tokensPath = path }
            }
            do {
                _ = try ConsoleAuthentication.load(usersFile: usersPath, tokenFile: tokensPath)
                return "loaded"
            } catch {
                return error.description
            }
        }
        let hash = "$2b$12$" + String(repeating: "a", count: 53)
        #expect(failure(users: "alice:\(hash)\nbob\n").contains("line 2: expected NAME:BCRYPT-HASH"))
        #expect(failure(users: "alice:plain-password\n").contains("line 1: the hash of alice is not a bcrypt hash"))
        #expect(failure(users: "alice:\(hash)\nalice:\(hash)\n").contains("user alice appears twice"))
        #expect(failure(users: "alice:\(hash)\n", mode: 0o644).contains("chmod"))
        #expect(failure(tokens: "short\n").contains("line 1: a token is one word of at least 32 characters"))
        #expect(failure(users: "# nobody yet\n").contains("hold no user and no token"))
        #expect(failure(users: "alice:\(hash)\n") == "loaded")
        let short = try await CommandLineTests.run(["console-user", "carol", "--users-file", folder.appendingPathComponent("u").path], input: "short\n")
        #expect(short.status != 0 && short.errors.contains("12 to 72 bytes"))
    }
}
