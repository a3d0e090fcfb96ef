// A clinic's integration, written against the TypeScript client that openapi-typescript
// generates from the served /openapi.json, with openapi-fetch. `./check` type-checks it (tsc
// --noEmit): it fails if an operation, a path, a parameter or a field used here disappears or
// changes type. It is never run.
import createClient from "openapi-fetch";
import type { components, operations, paths } from "./generated/api";

type PrescriptionIn = components["schemas"]["PrescriptionIn"];
type PrescriptionView = components["schemas"]["PrescriptionView"];
type Status = components["schemas"]["PrescriptionStatus"];

// The operation ids clients are generated with.
type Submitted =
  operations["submitPrescription"]["responses"][201]["content"]["application/json"];
type Listed =
  operations["listPrescriptions"]["responses"][200]["content"]["application/json"];
type Read = operations["getPrescription"]["responses"][200]["content"]["application/json"];
type Cancelled =
  operations["cancelPrescription"]["responses"][200]["content"]["application/json"];
type StatusChanged = components["schemas"]["PrescriptionStatusChangedEvent"];

// The closed sets are literal unions, not bare strings.
const finished: Status[] = ["delivered", "rejected", "cancelled", "expired"];
// @ts-expect-error: not a prescription status
const bogus: Status = "bogus";
void bogus;

export async function integrate(baseUrl: string, apiKey: string): Promise<void> {
  const client = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${apiKey}` },
  });

  const body: PrescriptionIn = {
    clinic_reference: "ADHD-2026-000123",
    type: "private",
    issued_on: "2026-11-20",
    authority: { kind: "paper_fp10pcd", serial_number: "PCD1234567" },
    prescriber: {
      given_name: "Priya",
      family_name: "Shah",
      registration: { body: "gmc", number: "7012345" },
      private_prescriber_code: "123456",
      address: { lines: ["1 Harley Street"], town: "London", postcode: "W1G 9QD" },
    },
    patient: {
      given_name: "Sam",
      family_name: "Taylor",
      date_of_birth: "1998-02-14",
      address: { lines: ["10 High Street"], town: "Manchester", postcode: "M1 1AE" },
    },
    items: [
      {
        product_code: "CONCERTA-XL-36",
        quantity: 28,
        dose: { units: 1, times_per_day: 1 },
        instructions: "Take ONE tablet each morning",
        days_supply: 28,
      },
    ],
  };

  // Submit.
  const submitted = await client.POST("/v1/prescriptions", {
    params: { header: { "Idempotency-Key": "order-123" } },
    body,
  });
  if (submitted.error) {
    const problem: components["schemas"]["Problem"] = submitted.error;
    throw new Error(`${problem.code}: ${problem.detail}`);
  }
  const created: Submitted = submitted.data;
  const id: string = created.id;
  const findings: string[] = created.findings.map(
    (f) => `${f.severity} ${f.code} (${f.rule})`,
  );

  // Read.
  const read = await client.GET("/v1/prescriptions/{id}", { params: { path: { id } } });
  if (read.data) {
    const one: Read = read.data;
    const status: Status = one.status;
    const timeline = (one.timeline ?? []).map((t) => `${t.at} ${t.event}`);
    console.log(status, timeline, findings);
  }

  // List, filtered by status and reference, a page at a time.
  let cursor: string | undefined;
  do {
    const page = await client.GET("/v1/prescriptions", {
      params: {
        query: {
          status: "awaiting_clinical_check",
          clinic_reference: "ADHD-2026-000123",
          limit: 50,
          ...(cursor ? { cursor } : {}),
        },
      },
    });
    if (!page.data) break;
    const listed: Listed = page.data;
    const views: PrescriptionView[] = listed.data;
    console.log(views.map((v) => `${v.id} ${v.status} ${v.type} ${v.links.self}`));
    cursor = listed.next_cursor ?? undefined;
  } while (cursor);

  // Cancel.
  const cancelled = await client.POST("/v1/prescriptions/{id}/cancel", {
    params: { path: { id } },
    body: { reason: "Patient no longer needs the medicine" },
  });
  if (cancelled.data) {
    const after: Cancelled = cancelled.data;
    console.log(finished.includes(after.status));
  }
}

// A clinic's webhook receiver reads the documented payload.
export function onStatusChanged(event: StatusChanged): string {
  return `${event.data.id} (${event.data.clinic_reference}) is now ${event.data.status}`;
}

// The FHIR front door: an EPS message Bundle, answered with an OperationOutcome.
type Recorded =
  operations["processMessage"]["responses"][201]["content"]["application/fhir+json"];
type Refused =
  operations["processMessage"]["responses"][422]["content"]["application/fhir+json"];
export function prescriptionIdOf(outcome: Recorded): string {
  return outcome.issue[0]?.diagnostics ?? "";
}
export function expressionsOf(outcome: Refused): string[] {
  return outcome.issue.flatMap((i) => i.expression ?? []);
}
