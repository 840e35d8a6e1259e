//! Turning other tools' descriptions into scenarist files. `openapi`: an
//! API description (OpenAPI 3.0/3.1, Swagger 2.0) into an app file. Pure
//! functions of text: the CLI reads and writes the files.

pub mod openapi;
