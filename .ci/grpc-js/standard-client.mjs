// CI only: what grpcurl does, with an independent gRPC implementation (grpc-js).
//
//   node standard-client.mjs HOST:PORT CA.pem
//
// Over TLS (verified against the registry's CA), it lists the services by server
// reflection (grpc.reflection.v1alpha), fetches the file that defines each
// clearance.v1 service and names its methods, and asks grpc.health.v1.Health
// whether the server and each service are SERVING. It prints one JSON object and
// exits non-zero on any failure.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const require = createRequire(import.meta.url);
const descriptor = require("protobufjs/ext/descriptor");

const [target, caPath] = process.argv.slice(2);
if (!target || !caPath) {
  console.error("usage: node standard-client.mjs HOST:PORT CA.pem");
  process.exit(2);
}

const packageDir = (name) => path.dirname(require.resolve(`${name}/package.json`));
const load = (file) =>
  grpc.loadPackageDefinition(
    protoLoader.loadSync(file, { keepCase: true, longs: String, enums: String, defaults: true }),
  );

const reflectionProto = load(
  path.join(packageDir("@grpc/reflection"), "build/proto/grpc/reflection/v1alpha/reflection.proto"),
);
const healthProto = load(path.join(packageDir("grpc-health-check"), "proto/health/v1/health.proto"));
const credentials = grpc.credentials.createSsl(readFileSync(caPath));
const deadline = () => Date.now() + 10_000;

function reflect(request) {
  const client = new reflectionProto.grpc.reflection.v1alpha.ServerReflection(target, credentials);
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo({ deadline: deadline() });
    call.on("data", (response) => {
      call.end();
      client.close();
      if (response.error_response) {
        reject(new Error(`reflection error: ${response.error_response.error_message}`));
      } else {
        resolve(response);
      }
    });
    call.on("error", reject);
    call.write(request);
  });
}

function check(service) {
  const client = new healthProto.grpc.health.v1.Health(target, credentials);
  return new Promise((resolve, reject) => {
    client.Check({ service }, { deadline: deadline() }, (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response.status);
    });
  });
}

const listed = await reflect({ list_services: "" });
const services = listed.list_services_response.service.map((s) => s.name).sort();
const methods = {};
for (const name of services.filter((s) => s.startsWith("clearance.v1."))) {
  const found = await reflect({ file_containing_symbol: name });
  for (const bytes of found.file_descriptor_response.file_descriptor_proto) {
    const file = descriptor.FileDescriptorProto.decode(bytes);
    for (const service of file.service) {
      if (`${file.package}.${service.name}` === name) {
        methods[name] = service.method.map((m) => m.name);
      }
    }
  }
  if (!methods[name] || methods[name].length === 0) {
    throw new Error(`reflection did not describe the methods of ${name}`);
  }
}
const health = {};
for (const service of ["", ...Object.keys(methods)]) {
  health[service] = await check(service);
  if (health[service] !== "SERVING") {
    throw new Error(`${service || "the server"} is ${health[service]}, not SERVING`);
  }
}
console.log(JSON.stringify({ services, methods, health }));
