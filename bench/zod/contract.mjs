// The clinic contract (POST /v1/prescriptions) in Zod: every rule the Rust contract
// (crates/rxbridge-http/src/contract*) checks, written the way a Zod user would write it, so the
// validation bench has an honest JavaScript peer. The formulary and the NHS exemption table are
// read from the same data files the Rust service embeds. Messages are Zod's own; the Rust
// service's pointers, codes and details are the product's and are not reproduced here.

import { readFileSync } from "node:fs";
import { z } from "zod";

const data = (f) => JSON.parse(readFileSync(new URL(`../../crates/rxbridge-domain/data/${f}`, import.meta.url)));
const PRODUCTS = new Set(data("formulary.json").products.map((p) => p.code));
const EXEMPTIONS = new Map(data("nhs.json").exemptions.map((e) => [e.code, e]));

// Printable text: trimmed, 1..max characters, no control characters.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const chars = (s) => [...s].length;
const text = (max) =>
  z
    .string()
    .trim()
    .refine((s) => s.length > 0, "must not be empty")
    .refine((s) => chars(s) <= max, `must be at most ${max} characters`)
    .refine((s) => !CONTROL.test(s), "must not contain control characters");
const optional = (schema) => schema.nullish();

// A calendar date written YYYY-MM-DD.
const isDate = (s) => {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const [y, m, d] = s.split("-").map(Number);
  const dt = new Date(Date.UTC(y, m - 1, d));
  return dt.getUTCFullYear() === y && dt.getUTCMonth() === m - 1 && dt.getUTCDate() === d;
};
const date = text(10).refine(isDate, "must be a calendar date written YYYY-MM-DD");
const ageOn = (dob, today) => {
  const [y, m, d] = dob.split("-").map(Number);
  const [ty, tm, td] = today.split("-").map(Number);
  return ty - y - (tm < m || (tm === m && td < d) ? 1 : 0);
};

// NHS number: 10 digits (spaces and hyphens ignored), Modulus 11 check digit.
const nhsNumber = (s) => {
  const d = s.replace(/[\s-]/g, "");
  if (!/^\d{10}$/.test(d)) return false;
  const sum = [...d.slice(0, 9)].reduce((a, c, i) => a + Number(c) * (10 - i), 0);
  const check = 11 - (sum % 11);
  return check !== 10 && (check === 11 ? 0 : check) === Number(d[9]);
};

const POSTCODE = /^(GIR0AA|[A-Z]\d|[A-Z]\d\d|[A-Z][A-Z]\d|[A-Z]\d[A-Z]|[A-Z][A-Z]\d[A-Z\d])\d[A-Z]{2}$/;
const postcode = (s) => {
  const c = s.replace(/\s/g, "").toUpperCase();
  return c === "GIR0AA" || POSTCODE.test(c);
};

const email = (s) => {
  if (s.length > 254 || /[\s\u0000-\u001f\u007f]/.test(s)) return false;
  const at = s.indexOf("@");
  if (at < 0) return false;
  const local = s.slice(0, at);
  const domain = s.slice(at + 1);
  return (
    local.length > 0 &&
    local.length <= 64 &&
    !domain.includes("@") &&
    domain.includes(".") &&
    domain.split(".").every((l) => l.length > 0 && l.length <= 63 && /^[A-Za-z0-9-]+$/.test(l) && !l.startsWith("-") && !l.endsWith("-"))
  );
};

const ukPhone = (s) => {
  if (/[^0-9 \-()+]/.test(s)) return false;
  const digits = s.replace(/\D/g, "");
  let national;
  if (s.startsWith("+")) national = digits.startsWith("44") ? `0${digits.slice(2).replace(/^0+/, "")}` : null;
  else if (digits.startsWith("0044")) national = `0${digits.slice(4).replace(/^0+/, "")}`;
  else if (s.includes("+")) national = null;
  else national = digits;
  return national !== null && national.length >= 10 && national.length <= 11 && /^0[1235789]/.test(national);
};

const REGISTRATION = {
  gmc: /^(\d{7}|L\d{6})$/i,
  nmc: /^\d\d[A-Z]\d{4}[A-Z]$/i,
  gphc: /^2\d{6}$/,
  hcpc: /^[A-Z]{2}\d{1,6}$/i,
  gdc: /^\d{1,6}$/,
  goc: /^01-\d{1,6}$/,
};

const KIND_BODIES = {
  doctor: ["gmc"],
  nurse_independent: ["nmc"],
  pharmacist_independent: ["gphc"],
  supplementary: ["nmc", "gphc", "hcpc", "goc"],
  physiotherapist_independent: ["hcpc"],
  podiatrist_independent: ["hcpc"],
  paramedic_independent: ["hcpc"],
  therapeutic_radiographer_independent: ["hcpc"],
  optometrist_independent: ["goc"],
  dentist: ["gdc"],
};

// The quantity in words, as the Rust reader reads it: British English number words, hyphens and
// spaces alike, trailing dosage-unit words, one spelling slip per word corrected.
const UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"];
const TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
const UNIT_WORDS = new Set(["tablet", "tablets", "tab", "tabs", "capsule", "capsules", "cap", "caps", "sachet", "sachets", "patch", "patches", "dosage", "doses", "dose", "unit", "units", "modified", "prolonged", "extended", "release", "mr", "xl", "ml", "millilitres", "milliliters", "only"]);
const VOCAB = [...UNITS, ...TENS.filter(Boolean), "hundred", "thousand", "and", "a"];

function parseTokens(t) {
  let i = 0;
  const unit = (w) => UNITS.indexOf(w);
  const tens = (w) => (w && TENS.indexOf(w) > 1 ? TENS.indexOf(w) * 10 : -1);
  const belowHundred = () => {
    const w = t[i];
    if (tens(w) > 0) {
      i++;
      const u = unit(t[i]);
      if (u >= 1 && u <= 9) {
        i++;
        return tens(w) + u;
      }
      return tens(w);
    }
    const u = unit(w);
    if (u >= 1 && u <= 19) {
      i++;
      return u;
    }
    throw new Error("unexpected word");
  };
  const belowThousand = () => {
    let h = null;
    if (t[i] === "a") h = 1;
    else if (unit(t[i]) >= 1 && unit(t[i]) <= 9 && t[i + 1] === "hundred") h = unit(t[i]);
    if (h === null) return belowHundred();
    i++;
    if (t[i] !== "hundred") throw new Error("expected hundred");
    i++;
    const and = t[i] === "and";
    if (and) i++;
    if (unit(t[i]) > 0 || tens(t[i]) > 0) return h * 100 + belowHundred();
    if (and) throw new Error("and at the end");
    return h * 100;
  };
  if (t.length === 0) throw new Error("empty");
  let n;
  if (t[0] === "zero") {
    i = 1;
    n = 0;
  } else {
    n = belowThousand();
    if (t[i] === "thousand") {
      i++;
      if (i < t.length) {
        const and = t[i] === "and";
        if (and) i++;
        const rest = belowThousand();
        if (and && rest >= 100) throw new Error("and before hundreds");
        n = n * 1000 + rest;
      } else n *= 1000;
    }
  }
  if (i !== t.length) throw new Error("unexpected word");
  return n;
}

// Optimal string alignment distance (a swap of neighbours is one edit).
function osa(a, b) {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}
function correct(w) {
  if (w.length < 3 || !/^[a-z]+$/i.test(w)) return null;
  const limit = w.length >= 6 ? 2 : 1;
  const best = VOCAB.filter((v) => v.length >= 3)
    .map((v) => [v, osa(w, v)])
    .filter(([, d]) => d <= limit)
    .sort((x, y) => x[1] - y[1]);
  if (best.length === 1 || (best.length > 1 && best[0][1] < best[1][1])) return best[0][0];
  return null;
}
export function readQuantityWords(s) {
  const t = s.toLowerCase().split(/[\s-]+/).filter(Boolean);
  while (t.length > 1 && UNIT_WORDS.has(t[t.length - 1])) t.pop();
  try {
    return parseTokens(t);
  } catch (strict) {
    const fixed = t.map((w) => (VOCAB.includes(w) ? w : correct(w)));
    if (fixed.some((w) => w === null)) return null;
    try {
      return parseTokens(fixed);
    } catch {
      return null;
    }
  }
}

// EPS short-form prescription id, e.g. 24F5DA-A83008-7EFE6Z.
const SHORT_FORM = /^[0-9A-Fa-f]{6}-[A-Za-z0-9]{6}-[0-9A-Fa-f]{5}[A-Za-z0-9+]$/;

// A compact JWS with a detached payload whose protected header names alg and kid.
const B64URL = /^[A-Za-z0-9_-]*$/;
const detachedJws = (s) => {
  const parts = s.split(".");
  if (parts.length !== 3 || parts[1] !== "" || !B64URL.test(parts[0]) || parts[0].length % 4 === 1) return false;
  if (parts[2] === "" || !B64URL.test(parts[2]) || parts[2].length % 4 === 1) return false;
  try {
    const h = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8"));
    return typeof h.alg === "string" && typeof h.kid === "string" && !("crit" in h) && !("b64" in h);
  } catch {
    return false;
  }
};

const address = (patient) =>
  z
    .strictObject({
      lines: z
        .array(
          z
            .string()
            .trim()
            .refine((s) => s.length > 0 && chars(s) <= 100 && !CONTROL.test(s), "must be 1 to 100 printable characters"),
        )
        .min(1)
        .max(4),
      town: text(100),
      postcode: text(16),
      country: optional(z.string().regex(/^[A-Z]{2}$/, "must be an ISO 3166-1 alpha-2 code such as GB")),
    })
    .superRefine((a, ctx) => {
      const country = a.country ?? "GB";
      if (patient && country !== "GB") ctx.addIssue({ code: "custom", path: ["country"], message: "the pharmacy delivers only to addresses in the United Kingdom" });
      if (country === "GB" && !postcode(a.postcode)) ctx.addIssue({ code: "custom", path: ["postcode"], message: "is not a valid UK postcode (e.g. M1 1AE)" });
    });

const prescriber = z
  .strictObject({
    given_name: text(100),
    family_name: text(100),
    registration: z
      .strictObject({ body: z.enum(["gmc", "nmc", "gphc", "hcpc", "gdc", "goc"]), number: text(16) })
      .refine((r) => REGISTRATION[r.body].test(r.number), { path: ["number"], message: "is not a valid registration number" }),
    kind: optional(z.enum(Object.keys(KIND_BODIES))),
    private_prescriber_code: optional(text(16).regex(/^\d{6}$/, "must be exactly 6 digits")),
    address: address(false),
  })
  .refine((p) => p.kind == null || KIND_BODIES[p.kind].includes(p.registration.body), { path: ["kind"], message: "is not a kind the registration body registers" });

const patient = (today) =>
  z.strictObject({
    nhs_number: optional(text(16).refine(nhsNumber, "is not a valid NHS number")),
    given_name: text(100),
    family_name: text(100),
    date_of_birth: date.refine((d) => d <= today, "must not be in the future").refine((d) => ageOn(d, today) <= 125, "is more than 125 years ago"),
    email: optional(text(254).refine(email, "is not a valid email address")),
    phone: optional(text(32).refine(ukPhone, "is not a valid UK phone number")),
    address: address(true),
  });

const wholeNumber = (min, max) => z.number().int().min(min).max(max);

const item = z
  .strictObject({
    product_code: text(64).refine((c) => PRODUCTS.has(c), "is not in the formulary"),
    quantity: optional(wholeNumber(1, 9999)),
    quantity_in_words: optional(text(200).refine((w) => readQuantityWords(w) !== null, "does not state a number in words")),
    dose: z.strictObject({
      units: z
        .number()
        .gt(0)
        .lte(20)
        .refine((u) => (u * 4) % 1 === 0, "must be in steps of 0.25"),
      times_per_day: wholeNumber(1, 12),
    }),
    instructions: text(500),
    days_supply: optional(wholeNumber(1, 366)),
    repeats: optional(wholeNumber(0, 12)),
    repeatable: optional(z.boolean()),
  })
  .superRefine((it, ctx) => {
    if (it.quantity == null) {
      const n = it.quantity_in_words == null ? null : readQuantityWords(it.quantity_in_words);
      if (it.quantity_in_words == null) ctx.addIssue({ code: "custom", path: ["quantity"], message: "is required" });
      else if (n !== null && (n < 1 || n > 9999)) ctx.addIssue({ code: "custom", path: ["quantity_in_words"], message: "states a quantity out of range" });
    }
  });

const ALLOWED_AUTHORITIES = { private: ["paper_fp10pcd", "electronic_private"], nhs: ["paper_fp10", "eps"] };

const authority = z
  .strictObject({
    kind: z.enum(["paper_fp10pcd", "paper_fp10", "eps", "electronic_private"]),
    form: optional(text(32)),
    serial_number: optional(text(32).regex(/^[A-Za-z0-9]+$/, "must be letters and digits only")),
    eps_prescription_id: optional(text(64)),
  })
  .superRefine((a, ctx) => {
    if (a.form != null && a.kind !== "paper_fp10pcd") ctx.addIssue({ code: "custom", path: ["form"], message: "only paper_fp10pcd names its form" });
    if (a.serial_number != null && a.kind !== "paper_fp10pcd" && a.kind !== "paper_fp10") ctx.addIssue({ code: "custom", path: ["serial_number"], message: "only paper authorities carry a serial number" });
    if (a.kind === "eps" && a.eps_prescription_id == null) ctx.addIssue({ code: "custom", path: ["eps_prescription_id"], message: "is required when kind is eps" });
    else if (a.kind === "eps" && !SHORT_FORM.test(a.eps_prescription_id)) ctx.addIssue({ code: "custom", path: ["eps_prescription_id"], message: "must be an EPS short-form prescription id" });
    else if (a.kind !== "eps" && a.eps_prescription_id != null) ctx.addIssue({ code: "custom", path: ["eps_prescription_id"], message: "only eps authorities carry an EPS prescription id" });
  });

/** The submission schema as of `today` (London's date, YYYY-MM-DD). */
export function prescriptionSchema(today) {
  return z
    .strictObject({
      clinic_reference: text(64).regex(/^[\x20-\x7e]+$/, "printable ASCII characters only"),
      type: z.enum(["private", "nhs"]),
      issued_on: date,
      authority,
      prescriber,
      patient: patient(today),
      items: z.array(item).min(1).max(4),
      nhs: optional(
        z.strictObject({
          exemption: text(4).refine((c) => EXEMPTIONS.has(c), "must be an NHS charge exemption code").refine((c) => {
            const e = EXEMPTIONS.get(c);
            return !e || ((e.valid_from == null || e.valid_from <= today) && (e.valid_to == null || today <= e.valid_to));
          }, "is not in force"),
          evidence_seen: z.boolean(),
        }),
      ),
      signature: optional(z.strictObject({ jws: text(16384).refine(detachedJws, "must be a compact JWS with a detached payload") })),
    })
    .superRefine((rx, ctx) => {
      if (!ALLOWED_AUTHORITIES[rx.type].includes(rx.authority.kind)) ctx.addIssue({ code: "custom", path: ["authority", "kind"], message: `a ${rx.type} prescription must use ${ALLOWED_AUTHORITIES[rx.type].join(" or ")}` });
      if (rx.type === "private" && rx.nhs != null) ctx.addIssue({ code: "custom", path: ["nhs"], message: "a private prescription must not carry the nhs block" });
      if (rx.type === "nhs" && rx.nhs == null) ctx.addIssue({ code: "custom", path: ["nhs"], message: "is required" });
      if (rx.type === "nhs" && rx.patient.nhs_number == null) ctx.addIssue({ code: "custom", path: ["patient", "nhs_number"], message: "is required on an NHS prescription" });
    });
}
