//! QEMU's legacy device syntax: `-qmp`, `-qmp-pretty` and `-monitor` with a device
//! (`monitor_parse`, `qemu_chr_parse_compat`) and `-serial` (`serial_parse`).

use super::*;

impl<'a> Parser<'a> {
    /// QEMU's `monitor_parse`: `-qmp`, `-qmp-pretty` and `-monitor` with a legacy device.
    pub(super) fn legacy_monitor(
        &mut self,
        arg: &'a str,
        origin: String,
        mode: MonitorMode,
        pretty: bool,
    ) -> Result<(), CliError> {
        let label = if let Some(rest) = arg.strip_prefix("chardev:") {
            truncate_label(rest)
        } else {
            let label = format!("compat_monitor{}", self.monitor_index);
            let two_lines = |first: &OptError| CliError {
                text: format!(
                    "{}{}\n{}{}",
                    prefix(&origin),
                    first,
                    prefix(&origin),
                    OptError::LegacyParseError(arg.to_string())
                ),
            };
            if self.chardev_ids.contains(label.as_str()) {
                return Err(two_lines(&OptError::DuplicateId { id: label, list: "chardev".into() }));
            }
            match compat_chardev(&label, arg) {
                Ok(kv) => {
                    self.chardev_ids.insert(Cow::Owned(label.clone()));
                    self.chardevs.push(PendingOpts { kv, origin: origin.clone() });
                }
                Err(Some(e)) => return Err(two_lines(&e)),
                Err(None) => return Err(fail(&origin, &OptError::LegacyParseError(arg.to_string()))),
            }
            label
        };
        if !id_wellformed(&label) {
            // QEMU checks the `chardev:` label without printing the identifier hint.
            return Err(fail(&origin, &OptError::ExpectsIdentifierBare));
        }
        if self.mon_ids.contains(label.as_str()) {
            return Err(fail(&origin, &OptError::DuplicateId { id: label, list: "mon".into() }));
        }
        self.mon_ids.insert(Cow::Owned(label.clone()));
        self.mons.push(PendingMon {
            id: Some(Cow::Owned(label.clone())),
            chardev: Some(Cow::Owned(label)),
            mode: Some(Cow::Borrowed(match mode {
                MonitorMode::Control => "control",
                MonitorMode::Readline => "readline",
            })),
            pretty,
            origin,
        });
        self.monitor_index += 1;
        Ok(())
    }
}

/// QEMU's `serial_parse`: `chardev:ID` names an existing chardev, anything else is a legacy
/// device that becomes chardev `serial0`. Every failure ends with QEMU's `could not connect
/// serial device to character backend 'DEV'` line, after the reason if there is one.
pub(super) fn serial_spec(
    arg: &str,
    origin: &str,
    chardevs: &[CliChardev],
    monitors: &[MonitorSpec],
    chardev_ids: &std::collections::BTreeSet<Cow<'_, str>>,
    daemonize: bool,
    stdio_used: bool,
) -> SerialSpec {
    let last = format!("could not connect serial device to character backend '{arg}'");
    let failed = |reason: Option<String>| match reason {
        Some(r) => format!("{}{r}\n{}{last}", prefix(origin), prefix(origin)),
        None => format!("{}{last}", prefix(origin)),
    };
    let mut spec = SerialSpec { chardev: String::new(), new: None, origin: origin.to_string(), deferred: None };
    if let Some(id) = arg.strip_prefix("chardev:") {
        spec.chardev = id.to_string();
        if !chardevs.iter().any(|c| c.spec.id == id) {
            spec.deferred = Some(failed(None));
        } else if monitors.iter().any(|m| m.chardev == id && m.deferred.is_none()) {
            // fdmon's own check (QEMU 7.2 with `-machine none` never connects the port): a
            // chardev has one frontend, a monitor or the console.
            spec.deferred = Some(failed(Some(OptError::DeviceInUse(id.to_string()).to_string())));
        }
        return spec;
    }
    let label = "serial0";
    spec.chardev = label.to_string();
    if chardev_ids.contains(label) {
        spec.deferred =
            Some(failed(Some(OptError::DuplicateId { id: label.into(), list: "chardev".into() }.to_string())));
        return spec;
    }
    let kv = match compat_chardev(label, arg) {
        Ok(kv) => kv,
        Err(e) => {
            spec.deferred = Some(failed(e.map(|e| e.to_string())));
            return spec;
        }
    };
    match chardev_from_kv(&kv) {
        Err(e) => spec.deferred = Some(failed(Some(e.to_string()))),
        Ok(c) if matches!(c.backend, BackendSpec::Stdio { .. }) && daemonize => {
            spec.deferred = Some(failed(Some(OptError::StdioWithDaemonize.to_string())))
        }
        Ok(c) if matches!(c.backend, BackendSpec::Stdio { .. }) && stdio_used => {
            spec.deferred = Some(failed(Some(OptError::StdioInUse.to_string())))
        }
        Ok(c) => spec.new = Some(CliChardev { spec: c, deferred: None, origin: origin.to_string() }),
    }
    spec
}

/// QEMU copies `chardev:LABEL` into a 32-byte buffer: at most 31 bytes survive. A character
/// cut in half becomes U+FFFD, which keeps the label invalid as QEMU's half byte does.
pub(super) fn truncate_label(label: &str) -> String {
    if label.len() <= 31 {
        return label.to_string();
    }
    let mut end = 31;
    while !label.is_char_boundary(end) {
        end -= 1;
    }
    let mut s = label[..end].to_string();
    if end < 31 {
        s.push('\u{FFFD}');
    }
    s
}

/// QEMU's `qemu_chr_parse_compat` (7.2): the legacy device syntax of `-qmp`/`-monitor`.
/// `Err(Some(e))` prints `e` then `parse error: DEV`; `Err(None)` prints only the latter.
pub(super) fn compat_chardev<'a>(label: &str, full: &'a str) -> Result<KvList<'a>, Option<OptError>> {
    let mut kv = KvList::with_id(label.to_string());
    let mut filename = full;
    if let Some(p) = filename.strip_prefix("mon:") {
        filename = p;
        kv.set("mux", "on");
        if filename == "stdio" {
            kv.set("signal", "off");
        }
    }
    if matches!(filename, "null" | "pty" | "msmouse" | "wctablet" | "braille" | "testdev" | "stdio") {
        kv.set("backend", filename);
        return Ok(kv);
    }
    if let Some(p) = filename.strip_prefix("vc") {
        kv.set("backend", "vc");
        if let Some(dims) = p.strip_prefix(':') {
            let (w, h, keys) = if let Some((w, h)) = scan_dims(dims, "x") {
                (w, h, ("width", "height"))
            } else if let Some((w, h)) = scan_dims(dims, "Cx") {
                (w, h, ("cols", "rows"))
            } else {
                return Err(None);
            };
            kv.set(keys.0, w);
            kv.set(keys.1, h);
        }
        return Ok(kv);
    }
    if filename == "con:" {
        kv.set("backend", "console");
        return Ok(kv);
    }
    if filename.starts_with("COM") {
        kv.set("backend", "serial");
        kv.set("path", filename);
        return Ok(kv);
    }
    for (prefix, backend) in [("file:", "file"), ("pipe:", "pipe")] {
        if let Some(p) = filename.strip_prefix(prefix) {
            kv.set("backend", backend);
            kv.set("path", p);
            return Ok(kv);
        }
    }
    for layer in ["tcp:", "telnet:", "tn3270:", "websocket:"] {
        let Some(p) = filename.strip_prefix(layer) else {
            continue;
        };
        let (host, port, rest) = scan_host_port(p, b",").ok_or(None)?;
        kv.set("backend", "socket");
        kv.set("host", host);
        kv.set("port", port);
        if let Some(tail) = rest.strip_prefix(',') {
            let more = parse_kv_quiet(tail, None);
            more.check_items(&CHARDEV_OPTS).map_err(Some)?;
            kv.extend(more);
        }
        match layer {
            "telnet:" => kv.set("telnet", "on"),
            "tn3270:" => kv.set("tn3270", "on"),
            "websocket:" => kv.set("websocket", "on"),
            _ => {}
        }
        return Ok(kv);
    }
    if let Some(p) = filename.strip_prefix("udp:") {
        kv.set("backend", "udp");
        let (host, port, rest) = scan_host_port(p, b"@,").ok_or(None)?;
        kv.set("host", host);
        kv.set("port", port);
        if let Some(local) = rest.strip_prefix('@') {
            let (host, port, _) = scan_host_port(local, b",").ok_or(None)?;
            kv.set("localaddr", host);
            kv.set("localport", port);
        }
        return Ok(kv);
    }
    if let Some(p) = filename.strip_prefix("unix:") {
        kv.set("backend", "socket");
        let more = parse_kv_quiet(p, Some("path"));
        more.check_items(&CHARDEV_OPTS).map_err(Some)?;
        kv.extend(more);
        return Ok(kv);
    }
    if filename.starts_with("/dev/parport") || filename.starts_with("/dev/ppi") {
        kv.set("backend", "parallel");
        kv.set("path", filename);
        return Ok(kv);
    }
    if filename.starts_with("/dev/") {
        kv.set("backend", "serial");
        kv.set("path", filename);
        return Ok(kv);
    }
    Err(Some(OptError::NotValidCharDriver(filename.to_string())))
}

/// C `sscanf("%N[^STOPS]")`: 1..=max bytes containing none of `stops`.
pub(super) fn scan_until<'a>(s: &'a str, max: usize, stops: &[u8]) -> Option<(&'a str, &'a str)> {
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if c.is_ascii() && stops.contains(&(c as u8)) {
            break;
        }
        if i + c.len_utf8() > max {
            break;
        }
        end = i + c.len_utf8();
    }
    (end > 0).then(|| (&s[..end], &s[end..]))
}

/// `"%64[^:]:%32[^,]%n"`, falling back to `":%32[^,]%n"` with an empty host.
pub(super) fn scan_host_port<'a>(p: &'a str, port_stops: &[u8]) -> Option<(&'a str, &'a str, &'a str)> {
    if let Some((host, r)) = scan_until(p, 64, b":") {
        if let Some((port, rest)) = r.strip_prefix(':').and_then(|r| scan_until(r, 32, port_stops)) {
            return Some((host, port, rest));
        }
    }
    let (port, rest) = scan_until(p.strip_prefix(':')?, 32, port_stops)?;
    Some(("", port, rest))
}

/// `"%7[0-9]SEP%7[0-9]"` for the `vc:WxH` / `vc:WCxHC` forms.
pub(super) fn scan_dims<'a>(s: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let digits = |s: &'a str| {
        let n = s.bytes().take(7).take_while(u8::is_ascii_digit).count();
        (n > 0).then(|| (&s[..n], &s[n..]))
    };
    let (w, rest) = digits(s)?;
    let (h, _) = digits(rest.strip_prefix(sep)?)?;
    Some((w, h))
}
