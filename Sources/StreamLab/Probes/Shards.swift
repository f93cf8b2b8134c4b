/// Why shard reports cannot be merged.
public enum MergeError: Error, CustomStringConvertible, Equatable {
    case notAShard(file: String, reason: String)
    case mismatch(file: String, field: String, expected: String, found: String)
    case duplicate(file: String, other: String, shard: String)
    case missing(shards: [Int], count: Int)
    case unsupported(file: String, command: String)
    case nothing

    public var description: String {
        switch self {
        case let .notAShard(file, reason): "'\(file)' is not a shard report of stream-probe: \(reason)"
        case let .mismatch(file, field, expected, found):
            "'\(file)' belongs to another run: its \(field) is \(found), the first shard's is \(expected)"
        case let .duplicate(file, other, shard): "'\(file)' and '\(other)' are both shard \(shard)"
        case let .missing(shards, count):
            "shard\(shards.count == 1 ? "" : "s") \(shards.map(String.init).joined(separator: ", ")) of \(count) "
                + "\(shards.count == 1 ? "is" : "are") missing; pass --partial to merge what is there"
        case let .unsupported(file, command): "'\(file)': merging '\(command)' reports is not supported"
        case .nothing: "no shard reports to merge"
        }
    }
}

/// The run a shard belongs to: shards merge only when all of this but the
/// shard index agree. `settings` are the options that change a number.
public struct SweepIdentity: Sendable, Equatable {
    public var command: String
    public var model: String
    public var architectureSHA256: String
    public var settings: [String: String]
    public var text: String
    public var textSHA256: String
    public var textBytes: Int
    /// Tokens of the whole text (every shard reads it all).
    public var textTokens: Int
    public var window: Int
    public var stride: Int
    public var shard: Shard

    public init(command: String, model: String, architectureSHA256: String, settings: [String: String], text: String,
                textSHA256: String, textBytes: Int, textTokens: Int, window: Int, stride: Int, shard: Shard) {
        self.command = command
        self.model = model
        self.architectureSHA256 = architectureSHA256
        self.settings = settings
        self.text = text
        self.textSHA256 = textSHA256
        self.textBytes = textBytes
        self.textTokens = textTokens
        self.window = window
        self.stride = stride
        self.shard = shard
    }

    /// The fields that must agree, as (name, value) text.
    var fields: [(String, String)] {
        [("command", command), ("model", model), ("architecture_sha256", architectureSHA256),
         ("settings", settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")),
         ("text_sha256", textSHA256), ("text_bytes", String(textBytes)), ("text_tokens", String(textTokens)), ("window", String(window)), ("stride", String(stride)),
         ("shard count", String(shard.count))]
    }

    /// The layout of `run` and `partial` this build writes and reads.
    public static let reportVersion = 1

    func json() -> JSONOutput {
        .object([("version", .int(Self.reportVersion)), ("command", .string(command)), ("model", .string(model)), ("architecture_sha256", .string(architectureSHA256)),
                 ("settings", .object(settings.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
                 ("text", .string(text)), ("text_sha256", .string(textSHA256)), ("text_bytes", .int(textBytes)),
                 ("text_tokens", .int(textTokens)), ("window", .int(window)), ("stride", .int(stride)), ("shard", .int(shard.index)), ("shards", .int(shard.count))])
    }

    init(json j: JSONValue, file: String) throws {
        func bad(_ why: String) -> MergeError { .notAShard(file: file, reason: why) }
        guard let version = j["version"]?.int else { throw bad("'run.version' is missing") }
        guard version == Self.reportVersion else {
            throw bad("it was written by another version of stream-probe (report version \(version); this one reads \(Self.reportVersion))")
        }
        func string(_ key: String) throws -> String { guard let s = j[key]?.string else { throw bad("'run.\(key)' is missing") }; return s }
        func int(_ key: String) throws -> Int { guard let i = j[key]?.int else { throw bad("'run.\(key)' is missing") }; return i }
        guard let settings = j["settings"]?.members else { throw bad("'run.settings' is missing") }
        var s: [String: String] = [:]
        for (key, value) in settings { guard let v = value.string else { throw bad("'run.settings.\(key)' is not a string") }; s[key] = v }
        let shard: Shard
        do { shard = try Shard(index: try int("shard"), count: try int("shards")) } catch is TokenizerError {
            throw bad("'run.shard' is not i of n with 0 <= i < n")
        }
        self.init(command: try string("command"), model: try string("model"), architectureSHA256: try string("architecture_sha256"),
                  settings: s, text: try string("text"), textSHA256: try string("text_sha256"), textBytes: try int("text_bytes"),
                  textTokens: try int("text_tokens"), window: try int("window"), stride: try int("stride"), shard: shard)
    }
}

/// The sums an ablation sweep's report carries so that shards combine into
/// the report of the whole run: every figure is a ratio of sums, and every
/// standard error comes from window statistics that merge exactly.
public struct AblationPartial: Sendable {
    var plan: [[Intervention]]
    var clean: MetricSums
    var entries: [MetricSums]
    var geometry: StreamGeometrySums
    var positions: Int
    var sequences: Int

    mutating func merge(_ o: AblationPartial) {
        clean.merge(o.clean)
        for k in entries.indices { entries[k].merge(o.entries[k]) }
        geometry.merge(o.geometry)
        positions += o.positions
        sequences += o.sequences
    }

    /// The sweep these sums describe.
    var sweep: AblationSweep {
        let cleanLoss = clean.loss
        return AblationSweep(
            tokens: nil, cleanLoss: cleanLoss, cleanLossStandardError: clean.lossWindows.standardError,
            entries: zip(plan, entries).map { AblationEntry(interventions: $0, metrics: $1.metrics(cleanLoss: cleanLoss)) },
            positions: positions, sequences: sequences, geometry: geometry.geometry, partial: self)
    }

    func json() -> JSONOutput {
        .object([("plan", .array(plan.map { .strings($0.map(Self.encode)) })), ("clean", clean.json()),
                 ("entries", .array(entries.map { $0.json() })), ("geometry", geometry.json()),
                 ("positions", .int(positions)), ("sequences", .int(sequences))])
    }

    init(plan: [[Intervention]], clean: MetricSums, entries: [MetricSums], geometry: StreamGeometrySums, positions: Int, sequences: Int) {
        self.plan = plan
        self.clean = clean
        self.entries = entries
        self.geometry = geometry
        self.positions = positions
        self.sequences = sequences
    }

    init(json j: JSONValue, file: String) throws {
        func bad(_ why: String) -> MergeError { .notAShard(file: file, reason: "partial: \(why)") }
        guard let planJSON = j["plan"]?.array, let entriesJSON = j["entries"]?.array, planJSON.count == entriesJSON.count,
              let cleanJSON = j["clean"], let geometryJSON = j["geometry"], let positions = j["positions"]?.int,
              let sequences = j["sequences"]?.int else { throw bad("a field is missing") }
        plan = try planJSON.map { entry in
            guard let items = entry.array else { throw bad("'plan' is not a list of lists") }
            return try items.map { item in
                guard let text = item.string, let intervention = Self.decode(text) else { throw bad("an unknown intervention in 'plan'") }
                return intervention
            }
        }
        clean = try MetricSums(json: cleanJSON) ?? { throw bad("'clean' is malformed") }()
        entries = try entriesJSON.map { try MetricSums(json: $0) ?? { throw bad("an entry is malformed") }() }
        geometry = try StreamGeometrySums(json: geometryJSON) ?? { throw bad("'geometry' is malformed") }()
        self.positions = positions
        self.sequences = sequences
    }

    /// `block 3 skip`, `attention 3 zero`, `mlp 3 mean`, `head 3 1 skip`.
    static func encode(_ i: Intervention) -> String {
        let mode = AblationMode.allCases.first { $0.action == i.action }?.rawValue ?? "?"
        switch i.target {
        case let .block(l): return "block \(l) \(mode)"
        case let .attention(l): return "attention \(l) \(mode)"
        case let .mlp(l): return "mlp \(l) \(mode)"
        case let .head(l, h): return "head \(l) \(h) \(mode)"
        case .blockOrder:
            if case let .order(order) = i.action { return "order " + order.map(String.init).joined(separator: " ") }
            return "?"
        default: return "?"
        }
    }

    static func decode(_ text: String) -> Intervention? {
        let p = text.split(separator: " ").map(String.init)
        if p.first == "order" {
            let order = p.dropFirst().compactMap { Int($0) }
            return order.count == p.count - 1 ? Intervention.order(order) : nil
        }
        guard p.count >= 3, let mode = AblationMode(rawValue: p.last!), let l = Int(p[1]) else { return nil }
        switch (p[0], p.count) {
        case ("block", 3): return Intervention(.block(layer: l), mode: mode)
        case ("attention", 3): return Intervention(.attention(layer: l), mode: mode)
        case ("mlp", 3): return Intervention(.mlp(layer: l), mode: mode)
        case ("head", 4): return Int(p[2]).map { Intervention(.head(layer: l, head: $0), mode: mode) }
        default: return nil
        }
    }
}

extension WindowStatistic {
    /// `[count, mean, squared deviations]`, and the kept values when there are any (`--bootstrap`).
    func json() -> JSONOutput {
        .array([.int(count), .number(mean), .number(squaredDeviations)] + (values.map { [.array($0.map(JSONOutput.number))] } ?? []))
    }
    init?(json j: JSONValue) {
        guard let a = j.array, a.count == 3 || a.count == 4, let n = a[0].int, n >= 0, let mean = a[1].double,
              let m2 = a[2].double else { return nil }
        var values: [Double]?
        if a.count == 4 {
            guard let v = a[3].array?.compactMap(\.double), v.count == n else { return nil }
            values = v
        }
        self.init(count: n, mean: mean, squaredDeviations: m2, values: values)
    }
}

extension MetricSums {
    func json() -> JSONOutput {
        .object([("kl_sum", .number(klSum)), ("kl_positions", .int(klPositions)), ("kl_last_sum", .number(klLastSum)),
                 ("sequences", .int(sequences)), ("agreements", .int(agreements)), ("agreement_positions", .int(agreementPositions)),
                 ("loss_sum", .number(lossSum)), ("loss_positions", .int(lossPositions)),
                 ("windows", .array([klWindows, klLastWindows, agreementWindows, lossWindows, deltaLossWindows].map { $0.json() }))])
    }

    init?(json j: JSONValue) {
        guard let klSum = j["kl_sum"]?.double, let klPositions = j["kl_positions"]?.int, let klLastSum = j["kl_last_sum"]?.double,
              let sequences = j["sequences"]?.int, let agreements = j["agreements"]?.int,
              let agreementPositions = j["agreement_positions"]?.int, let lossSum = j["loss_sum"]?.double,
              let lossPositions = j["loss_positions"]?.int, let w = j["windows"]?.array, w.count == 5 else { return nil }
        let stats = w.compactMap(WindowStatistic.init(json:))
        guard stats.count == 5 else { return nil }
        self.init()
        (self.klSum, self.klPositions, self.klLastSum, self.sequences) = (klSum, klPositions, klLastSum, sequences)
        (self.agreements, self.agreementPositions, self.lossSum, self.lossPositions) = (agreements, agreementPositions, lossSum, lossPositions)
        (klWindows, klLastWindows, agreementWindows, lossWindows, deltaLossWindows) = (stats[0], stats[1], stats[2], stats[3], stats[4])
    }
}

extension StreamGeometrySums {
    func json() -> JSONOutput {
        .object([("cos_sums", .array(cosSums.map(JSONOutput.number))), ("positions", .int(positions)),
                 ("angle_sums", .array(angleSums.map { .array($0.map(JSONOutput.number)) })), ("sequences", .int(sequences)),
                 ("bi_windows", .array(biWindows.map { $0.json() })),
                 ("angle_windows", .array(angleWindows.map { .array($0.map { $0.json() }) }))])
    }

    init?(json j: JSONValue) {
        guard let cos = j["cos_sums"]?.array?.compactMap(\.double), let positions = j["positions"]?.int,
              let angles = j["angle_sums"]?.array?.map({ $0.array?.compactMap(\.double) ?? [] }), let sequences = j["sequences"]?.int,
              angles.count == cos.count + 1, angles.allSatisfy({ $0.count == cos.count + 1 }) else { return nil }
        self.init(layers: cos.count)
        guard let bi = j["bi_windows"]?.array?.compactMap(WindowStatistic.init(json:)), bi.count == cos.count,
              let aw = j["angle_windows"]?.array?.map({ ($0.array ?? []).compactMap(WindowStatistic.init(json:)) }),
              aw.count == cos.count + 1, aw.allSatisfy({ $0.count == cos.count + 1 }) else { return nil }
        cosSums = cos
        angleSums = angles
        biWindows = bi
        angleWindows = aw
        self.positions = positions
        self.sequences = sequences
    }

    mutating func merge(_ o: StreamGeometrySums) {
        for i in cosSums.indices { cosSums[i] += o.cosSums[i] }
        for i in angleSums.indices { for j in angleSums[i].indices { angleSums[i][j] += o.angleSums[i][j] } }
        for i in biWindows.indices { biWindows[i].merge(o.biWindows[i]) }
        for i in angleWindows.indices { for j in angleWindows[i].indices { angleWindows[i][j].merge(o.angleWindows[i][j]) } }
        positions += o.positions
        sequences += o.sequences
    }
}

extension LensSums {
    func json() -> JSONOutput {
        let arrays: [(String, [Double])] = [("kl", kl), ("entropy", entropy), ("probability", probability), ("match", match),
                                            ("next_loss", nextLoss)]
        return .object(arrays.map { ($0.0, .array($0.1.map(JSONOutput.number))) }
                       + [("windows", .array(windows.map { .array($0.map { $0.json() }) }))])
    }

    init?(json j: JSONValue, layers n: Int) {
        self.init(n)
        func read(_ key: String) -> [Double]? {
            guard let a = j[key]?.array else { return nil }
            let d = a.compactMap(\.double)
            return d.count == n ? d : nil
        }
        guard let kl = read("kl"), let entropy = read("entropy"), let probability = read("probability"), let match = read("match"),
              let nextLoss = read("next_loss"), let w = j["windows"]?.array, w.count == 5 else { return nil }
        let stats = w.map { ($0.array ?? []).compactMap(WindowStatistic.init(json:)) }
        guard stats.allSatisfy({ $0.count == n }) else { return nil }
        (self.kl, self.entropy, self.probability, self.match, self.nextLoss, windows) = (kl, entropy, probability, match, nextLoss, stats)
    }
}

extension LensPartial {
    func json() -> JSONOutput {
        .object([("layers", .int(logit.kl.count)), ("logit", logit.json()), ("tuned", tuned?.json() ?? .null),
                 ("positions", .int(positions)), ("predicted", .int(predicted)), ("sequences", .int(sequences))])
    }

    init(json j: JSONValue, file: String) throws {
        func bad(_ why: String) -> MergeError { .notAShard(file: file, reason: "partial: \(why)") }
        guard let n = j["layers"]?.int, n >= 1, n <= 1 << 16, let logitJSON = j["logit"], let positions = j["positions"]?.int,
              let predicted = j["predicted"]?.int, let sequences = j["sequences"]?.int else { throw bad("a field is missing") }
        guard let logit = LensSums(json: logitJSON, layers: n) else { throw bad("'logit' is malformed") }
        var tuned: LensSums?
        if let t = j["tuned"], !t.isNull {
            guard let sums = LensSums(json: t, layers: n) else { throw bad("'tuned' is malformed") }
            tuned = sums
        }
        self.init(logit: logit, tuned: tuned, positions: positions, predicted: predicted, sequences: sequences)
    }
}

extension Lesion {
    /// The lesion result of a merged sweep (its entries are the subsets, grouped by size).
    public init(merged sweep: AblationSweep, samples: Int, seed: UInt64) {
        var subsets: [[[Int]]] = []
        for entry in sweep.entries {
            let subset = entry.interventions.map(\.target.layer).sorted()
            if subsets.count <= subset.count { subsets.append([]) }
            subsets[subset.count].append(subset)
        }
        self.init(sweep: sweep, subsets: subsets, samples: samples, seed: seed)
    }
}

extension Pruning {
    /// The pruning result of a merged sweep of `blocks`-block spans.
    public init(merged sweep: AblationSweep, blocks n: Int) {
        self.init(sweep: sweep, blocks: n, layerCount: sweep.geometry.blockInfluence.count)
    }
}

extension FigureSums {
    func json() -> JSONOutput {
        .object([("sums", .array(sums.map(JSONOutput.number))), ("weight", .number(weight)),
                 ("windows", .array(stats.map { $0.json() }))])
    }

    init?(json j: JSONValue, count n: Int) {
        guard let sums = j["sums"]?.array?.compactMap(\.double), sums.count == n, let weight = j["weight"]?.double,
              let stats = j["windows"]?.array?.compactMap(WindowStatistic.init(json:)), stats.count == n else { return nil }
        self.init(count: n)
        self.sums = sums
        self.weight = weight
        self.stats = stats
    }
}

extension GradientPartial {
    func json(title: String) -> JSONOutput {
        .object([("layers", .int(layerCount)), ("title", .string(title)), ("figures", figures.json()),
                 ("sequences", .int(sequences)), ("positions", .int(positions))])
    }

    init(json j: JSONValue, file: String) throws {
        func bad(_ why: String) -> MergeError { .notAShard(file: file, reason: "partial: \(why)") }
        guard let n = j["layers"]?.int, n >= 1, n <= 1 << 16, let f = j["figures"], let sequences = j["sequences"]?.int,
              let positions = j["positions"]?.int else { throw bad("a field is missing") }
        guard let figures = FigureSums(json: f, count: n * 7 + 4) else { throw bad("'figures' is malformed") }
        self.init(figures: figures, layerCount: n, sequences: sequences, positions: positions)
    }
}

extension PathPartial {
    func json() -> JSONOutput {
        .object([("units", .int(units)), ("parallel", .bool(parallel)), ("figures", figures.json()),
                 ("reconstruction_error", .number(reconstructionError)), ("samples", .int(samples)),
                 ("sequences", .int(sequences)), ("positions", .int(positions))])
    }

    init(json j: JSONValue, file: String) throws {
        func bad(_ why: String) -> MergeError { .notAShard(file: file, reason: "partial: \(why)") }
        guard let n = j["units"]?.int, n >= 1, n <= 1 << 16, let parallel = j["parallel"]?.bool, let f = j["figures"],
              let worst = j["reconstruction_error"]?.double, let samples = j["samples"]?.int, let sequences = j["sequences"]?.int,
              let positions = j["positions"]?.int else { throw bad("a field is missing") }
        guard let figures = FigureSums(json: f, count: 2 * n + 3) else { throw bad("'figures' is malformed") }
        self.init(figures: figures, units: n, parallel: parallel, reconstructionError: worst, samples: samples,
                  sequences: sequences, positions: positions)
    }
}

/// The sums of one shard, by command.
public enum ShardPartial: Sendable {
    case paths(PathPartial)
    case ablation(AblationPartial)
    case lens(LensPartial)
    case gradients(GradientPartial, title: String)
}

/// What merging gives: the sweep of the merged windows, by command.
public enum MergedSweep: Sendable {
    case paths(PathSpectrum)
    case ablation(AblationSweep)
    case lens(LensSummary)
    case gradients(GradientReport, title: String)
}

/// A shard report read back: its run and its sums.
public struct ShardReport: Sendable {
    public let file: String
    public let identity: SweepIdentity
    public let partial: ShardPartial

    /// Reads the JSON report in `file` (at most 1 GiB).
    public init(file: String) throws {
        let bytes: [UInt8]
        do { bytes = try FileBytes.read(file, limit: 1 << 30) } catch {
            throw MergeError.notAShard(file: file, reason: "cannot read it (\(error))")
        }
        try self.init(file: file, bytes: bytes)
    }

    /// Reads `bytes` (the JSON report of `file`).
    public init(file: String, bytes: [UInt8]) throws {
        let json: JSONValue
        do { json = try JSONReader.parseLocated(bytes) } catch { throw MergeError.notAShard(file: file, reason: "not JSON (\(error))") }
        guard let run = json["run"] else { throw MergeError.notAShard(file: file, reason: "it has no 'run' (was it made with --shard i/n and --format json?)") }
        identity = try SweepIdentity(json: run, file: file)
        guard let partial = json["partial"] else { throw MergeError.notAShard(file: file, reason: "it has no 'partial'") }
        switch identity.command {
        case "ablate", "lesion", "reorder", "prune": self.partial = .ablation(try AblationPartial(json: partial, file: file))
        case "lens": self.partial = .lens(try LensPartial(json: partial, file: file))
        case "paths": self.partial = .paths(try PathPartial(json: partial, file: file))
        case "gradients":
            self.partial = .gradients(try GradientPartial(json: partial, file: file), title: partial["title"]?.string ?? "Gradient norm by depth")
        default: throw MergeError.unsupported(file: file, command: identity.command)
        }
        self.file = file
    }

    /// Combines shards of one run (all of them, unless `partial`): the sweep
    /// of the merged windows and the shards that were missing.
    public static func merge(_ shards: [ShardReport], allowMissing: Bool = false) throws -> (sweep: MergedSweep, identity: SweepIdentity, missing: [Int]) {
        guard let first = shards.first else { throw MergeError.nothing }
        var seen: [Int: String] = [:]
        for s in shards {
            for ((name, expected), (_, found)) in zip(first.identity.fields, s.identity.fields) where expected != found {
                throw MergeError.mismatch(file: s.file, field: name, expected: expected, found: found)
            }
            if let other = seen[s.identity.shard.index] {
                throw MergeError.duplicate(file: s.file, other: other, shard: s.identity.shard.description)
            }
            seen[s.identity.shard.index] = s.file
            let fits: Bool
            switch (first.partial, s.partial) {
            case let (.ablation(a), .ablation(b)): fits = a.plan == b.plan && a.geometry.cosSums.count == b.geometry.cosSums.count
            case let (.lens(a), .lens(b)): fits = a.logit.kl.count == b.logit.kl.count && (a.tuned == nil) == (b.tuned == nil)
            case let (.gradients(a, _), .gradients(b, _)): fits = a.layerCount == b.layerCount
            case let (.paths(a), .paths(b)): fits = a.units == b.units && a.parallel == b.parallel && a.samples == b.samples
            default: fits = false
            }
            guard fits else { throw MergeError.mismatch(file: s.file, field: "layout of its sums", expected: "that of '\(first.file)'", found: "another") }
        }
        let count = first.identity.shard.count
        let missing = (0..<count).filter { seen[$0] == nil }
        if !missing.isEmpty && !allowMissing { throw MergeError.missing(shards: missing, count: count) }
        switch first.partial {
        case .ablation(var total):
            for s in shards.dropFirst() { if case let .ablation(p) = s.partial { total.merge(p) } }
            return (.ablation(total.sweep), first.identity, missing)
        case .lens(var total):
            for s in shards.dropFirst() { if case let .lens(p) = s.partial { total.merge(p) } }
            return (.lens(total.summary), first.identity, missing)
        case .paths(var total):
            for s in shards.dropFirst() { if case let .paths(p) = s.partial { total.merge(p) } }
            return (.paths(total.spectrum), first.identity, missing)
        case .gradients(var total, let title):
            for s in shards.dropFirst() { if case let .gradients(p, _) = s.partial { total.merge(p) } }
            return (.gradients(total.report, title: title), first.identity, missing)
        }
    }
}
